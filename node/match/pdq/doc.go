// Package pdq computes PDQ perceptual hashes of images: 256-bit hashes that
// stay close (in Hamming distance) when an image is re-encoded, resized,
// recoloured, blurred or lightly edited, so that a known image can be
// recognised in an upload. It implements the algorithm Facebook published
// in "The TMK+PDQF and PDQ hashing algorithms" and produces hashes that
// interoperate with the reference implementation (facebook/ThreatExchange,
// folder pdq) and the hashes exchanged between platforms.
//
// # Basics
//
// FromReaderDihedral decodes a JPEG, PNG, GIF or WebP image and hashes it.
// It returns the Hash and a Quality from 0 to 100 and, from the same single
// pass over the pixels, the hashes the image would have if rotated by 90,
// 180 or 270 degrees or mirrored (see Dihedral); matching an upload's hash
// against a list of such hashes finds rotated and flipped copies. Two
// hashes 31 or fewer bits apart are taken to be the same picture, the
// reference's threshold. Hashes of quality below MinQuality (featureless
// images) should not be matched: they are mostly noise and collide with
// each other.
//
// It first shrinks an image larger than 512x512 to fit in 512x512, as the
// reference's Python file hasher does with Pillow's Image.thumbnail, and
// hashes the thumbnail (see "Why a thumbnail" below). The published
// algorithm and the C++ reference hash the full-size image; the tests do
// too, to compare with them.
//
// # The algorithm as implemented
//
//  0. Shrink an image larger than 512 pixels on a side to fit in 512x512
//     as Pillow's Image.thumbnail((512, 512)) does (thumbnail.go has the
//     details): the aspect ratio kept; a large JPEG first reduced by 2, 4
//     or 8 as Pillow's draft mode decodes it; an image still four or more
//     times the thumbnail along a side first averaged over blocks of
//     floor(side/thumbnail/2) pixels; then bicubic resampling (a = -0.5)
//     with the support stretched by the shrink factor. It resamples the
//     luminance of step 1 in float32, where Pillow resamples 8-bit R, G,
//     B; luminance is linear in them, so only Pillow's rounding is lost.
//     Paletted images are resampled nearest-neighbour, as Pillow does.
//  1. Decode; convert each pixel to 8-bit R, G, B (for JPEG's YCbCr with the
//     arithmetic of color.YCbCrToRGB, chroma upsampled by repetition) and
//     to luminance Y = 0.299 R + 0.587 G + 0.114 B in float32. Alpha is
//     ignored, as the reference ignores it.
//  2. Downsample to 64x64 with the reference's Jarosz filter: two passes,
//     each a box filter along the rows then along the columns, of width
//     ceil(dimension/128) (the window reaches (width+2)/2-1 samples forward
//     and the rest back, and shrinks at the edges, each output the mean of
//     the samples in range); then keep the filtered sample at row
//     floor((i+0.5)·rows/64), column floor((j+0.5)·cols/64). The passes are
//     fused so that the full-size image is never held in memory, and large
//     images are split into bands of rows filtered on all CPUs; each sample
//     is still the same weighted mean of the same pixels.
//  3. Quality: the sum over horizontally and vertically adjacent samples of
//     the 64x64 image of |u−v|·100/255, each truncated to an integer, divided
//     by 90 and capped at 100.
//  4. DCT: B = D·A·Dᵀ with D the 16x64 matrix
//     D[i][j] = sqrt(2/64)·cos(π/128·(i+1)·(2j+1)): the 16x16 lowest
//     frequencies of the 64x64 DCT-II, without the DC row and column.
//  5. Hash: bit (i, j) is set iff B[i][j] is greater than the median of the
//     256 coefficients (the 128th smallest). See Hash for how the bits are
//     laid out in the hexadecimal form.
//  6. Rotations and mirror images act on B by transposition and by negating
//     the coefficients of odd frequency along the mirrored axis, so the
//     eight dihedral hashes need one DCT.
//
// # Caveats
//
// # Why a thumbnail
//
// Hashes are exchanged between platforms that made them with different
// implementations, and the reference's test data (the hashes the project
// checks against) come from its Python implementation, whose file hasher
// shrinks the image to fit 512x512 before hashing. Hashing the full-size
// image instead, as the C++ reference does, moves a large photo's hash by
// a few bits: over the reference data, 5.8 bits from the Python hashes on
// average and 12 at worst, against 0.4 and 2 with the thumbnail. Both are
// within the reference suite's tolerance of 16 and far inside the match
// threshold of 31, so either matches the other's copies; the thumbnail is
// the closer to the data the project is held to, and it costs about the
// same (the full-size path filters every pixel four times, the thumbnail
// resamples once and filters a 512-pixel image).
//
// # Caveats
//
// Hashes are close to, not identical with, the reference's: JPEG decoders
// differ (Go's image/jpeg upsamples chroma by repetition where libjpeg
// interpolates, and their inverse DCTs round differently; libjpeg's draft
// decoding at 1/2, 1/4, 1/8 scale is approximated by block averages), float
// rounding differs, and the thumbnail is resampled in float, not in 8-bit
// RGB. Against the Python reference the distance is 0 to 2 bits on the
// reference images; against the C++ reference and other full-size ports,
// the full-size hash is 0 to 2 bits away. Transparent images are shrunk as
// if opaque, where Pillow averages colours weighted by alpha; only the
// pixels at transparency edges differ.
//
// Mirroring an image moves its own hash a few bits away from the derived
// mirror-image hash when the box filter's width is even, because the
// reference's even-width window is not centred. A 512-pixel-wide thumbnail
// has a window of 4: a photo mirrored left to right hashes 16 to 18 bits
// from the derived variant (the reference's own hashes of the mirrored
// files show the same), within the match threshold.
//
// EXIF orientation is not applied (nor by the reference): a photo stored
// sideways hashes sideways; the dihedral variants cover that case. Only the
// first frame of an animated GIF is hashed. Decode refuses images whose
// header declares more than MaxPixels pixels, or a side longer than 65,536,
// before decoding them.
//
// All functions are safe for concurrent use.
package pdq
