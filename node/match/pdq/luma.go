package pdq

import (
	"image"
	"image/color"
)

// Luminance weights (ITU-R BT.601, the reference's "Y" of YUV) applied to
// 8-bit R, G, B. The tables hold each channel's weighted contribution so that
// every image type computes a pixel's luma with the same float32 additions
// and equal pixels give equal luma whatever type carries them.
var lumaR, lumaG, lumaB, lumaGray [256]float32

func init() {
	for v := range 256 {
		lumaR[v] = float32(0.299 * float64(v))
		lumaG[v] = float32(0.587 * float64(v))
		lumaB[v] = float32(0.114 * float64(v))
		lumaGray[v] = lumaR[v] + lumaG[v] + lumaB[v]
	}
}

func luma(r, g, b uint8) float32 { return lumaR[r] + lumaG[g] + lumaB[b] }

// lumaSource writes the luminance of one row of an image into dst, which is
// exactly as long as the image is wide. y counts from 0 at the top of the
// image's bounds. Calls for different rows may run concurrently.
type lumaSource func(y int, dst []float32)

// newLumaSource picks a row reader for img's concrete type. The common
// decoder outputs are read straight from their pixel slices; anything else
// goes through At, which is correct but several times slower.
//
// Alpha is ignored: the luminance is that of the non-premultiplied colour, as
// the reference does when it converts an image to RGB by dropping the alpha
// channel.
func newLumaSource(img image.Image) lumaSource {
	switch m := img.(type) {
	case *image.YCbCr:
		if src := ycbcrSource(m); src != nil {
			return src
		}
	case *image.NYCbCrA:
		if src := ycbcrSource(&m.YCbCr); src != nil {
			return src
		}
	case *image.RGBA:
		return rgbaSource(m)
	case *image.NRGBA:
		return nrgbaSource(m)
	case *image.Gray:
		return graySource(m)
	case *image.Paletted:
		return palettedSource(m)
	}
	return genericSource(img)
}

// ycbcrSource converts with the same integer arithmetic as
// color.YCbCrToRGB, so a *image.YCbCr and its conversion to RGBA hash alike.
// It returns nil for layouts it does not handle (negative origins, unknown
// subsampling), which then go through At.
func ycbcrSource(m *image.YCbCr) lumaSource {
	var hs, vs uint
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
	case image.YCbCrSubsampleRatio422:
		hs = 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio440:
		vs = 1
	case image.YCbCrSubsampleRatio411:
		hs = 2
	case image.YCbCrSubsampleRatio410:
		hs, vs = 2, 1
	default:
		return nil
	}
	r := m.Rect
	if r.Min.X < 0 || r.Min.Y < 0 {
		return nil
	}
	c0 := r.Min.X >> hs
	if hs == 1 && r.Min.X%2 == 0 {
		// The common JPEG layouts (4:2:0, 4:2:2), starting on an even
		// column: each chroma sample covers a pair of pixels.
		return func(y int, dst []float32) {
			ys := m.Y[y*m.YStride:][:len(dst)]
			crow := ((r.Min.Y+y)>>vs - r.Min.Y>>vs) * m.CStride
			n := (len(dst) + 1) / 2
			cbs, crs := m.Cb[crow:][:n], m.Cr[crow:][:n]
			ycbcrPairs(dst, ys, cbs, crs)
			if last := len(dst) - 1; last%2 == 0 {
				dst[last] = ycbcrLuma(ys[last], cbs[n-1], crs[n-1])
			}
		}
	}
	return func(y int, dst []float32) {
		ys := m.Y[y*m.YStride:][:len(dst)]
		crow := ((r.Min.Y+y)>>vs - r.Min.Y>>vs) * m.CStride
		cbs, crs := m.Cb[crow:], m.Cr[crow:]
		for x := range dst {
			c := (r.Min.X+x)>>hs - c0
			dst[x] = ycbcrLuma(ys[x], cbs[c], crs[c])
		}
	}
}

// ycbcrLuma converts one pixel exactly as color.YCbCrToRGB does and returns
// its luma.
func ycbcrLuma(y, cb, cr uint8) float32 {
	yy := int32(y) * 0x10101
	b := int32(cb) - 128
	r := int32(cr) - 128
	return luma(clamp16(yy+91881*r), clamp16(yy-22554*b-46802*r), clamp16(yy+116130*b))
}

// YCbCr to luma, fast. In 16.16 fixed point a channel before clamping is
// yy + d, d from the chroma; its integer part lies in -227..481 for all
// inputs. Biased by 256 it indexes a 1024-entry table holding the luma
// contribution of the clamped channel, so clamping costs nothing (the mask
// with 1023 only spares a bounds check). The result is identical to
// ycbcrLuma's.
var lumaRc, lumaGc, lumaBc [1024]float32

const clampBias = 256 << 16

func init() {
	for i := range 1024 {
		c := uint8(min(max(i-256, 0), 255))
		lumaRc[i], lumaGc[i], lumaBc[i] = lumaR[c], lumaG[c], lumaB[c]
	}
}

// ycbcrPairs converts a row whose chroma is horizontally halved: pixels 2c
// and 2c+1 share chroma sample c, whose contributions are computed once. If
// the row is odd in length, the caller converts the last pixel.
func ycbcrPairs(dst []float32, ys, cbs, crs []uint8) {
	even := len(dst) &^ 1
	ys = ys[:even]
	dst = dst[:len(ys)]
	for x := 0; x+1 < len(ys); x += 2 {
		c := x >> 1
		b := int32(cbs[c]) - 128
		r := int32(crs[c]) - 128
		dr := 91881*r + clampBias
		dg := -22554*b - 46802*r + clampBias
		db := 116130*b + clampBias
		y0 := int32(ys[x]) * 0x10101
		y1 := int32(ys[x+1]) * 0x10101
		dst[x] = lumaRc[(y0+dr)>>16&1023] + lumaGc[(y0+dg)>>16&1023] + lumaBc[(y0+db)>>16&1023]
		dst[x+1] = lumaRc[(y1+dr)>>16&1023] + lumaGc[(y1+dg)>>16&1023] + lumaBc[(y1+db)>>16&1023]
	}
}

// clamp16 turns a 16.16 fixed-point channel value into 0..255 the way
// color.YCbCrToRGB does.
func clamp16(v int32) uint8 {
	return uint8(min(max(v>>16, 0), 255))
}

func rgbaSource(m *image.RGBA) lumaSource {
	return func(y int, dst []float32) {
		p := m.Pix[y*m.Stride:][:4*len(dst)]
		for x := range dst {
			q := p[4*x : 4*x+4 : 4*x+4]
			r, g, b, a := q[0], q[1], q[2], q[3]
			if a != 0xff {
				r, g, b = unpremultiply(r, a), unpremultiply(g, a), unpremultiply(b, a)
			}
			dst[x] = luma(r, g, b)
		}
	}
}

// unpremultiply recovers a colour channel from its alpha-premultiplied
// value with the arithmetic of color.NRGBAModel.
func unpremultiply(c, a uint8) uint8 {
	if a == 0 {
		return 0
	}
	return uint8(uint32(c) * 0x101 * 0xffff / (uint32(a) * 0x101) >> 8)
}

func nrgbaSource(m *image.NRGBA) lumaSource {
	return func(y int, dst []float32) {
		p := m.Pix[y*m.Stride:][:4*len(dst)]
		for x := range dst {
			q := p[4*x : 4*x+3 : 4*x+3]
			dst[x] = luma(q[0], q[1], q[2])
		}
	}
}

func graySource(m *image.Gray) lumaSource {
	return func(y int, dst []float32) {
		p := m.Pix[y*m.Stride:][:len(dst)]
		for x, v := range p {
			dst[x] = lumaGray[v]
		}
	}
}

func palettedSource(m *image.Paletted) lumaSource {
	// Indices beyond the palette (which the GIF decoder rejects) read as black.
	var table [256]float32
	for i, c := range m.Palette {
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		table[i] = luma(n.R, n.G, n.B)
	}
	return func(y int, dst []float32) {
		p := m.Pix[y*m.Stride:][:len(dst)]
		for x, v := range p {
			dst[x] = table[v]
		}
	}
}

// genericSource reads pixels through At. The colour is un-premultiplied
// with color.NRGBAModel's arithmetic, inline because converting through the
// model would allocate for every pixel. A fully transparent pixel reads as
// black: At has already multiplied its colour by zero.
func genericSource(img image.Image) lumaSource {
	b := img.Bounds()
	return func(y int, dst []float32) {
		for x := range dst {
			r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			switch a {
			case 0xffff:
			case 0:
				r, g, bl = 0, 0, 0
			default:
				r, g, bl = r*0xffff/a, g*0xffff/a, bl*0xffff/a
			}
			dst[x] = luma(uint8(r>>8), uint8(g>>8), uint8(bl>>8))
		}
	}
}
