package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol/pb"
)

// pythonVPDQ was written by python-threatexchange's formatting: json.dumps
// of f"{pdq_hex},{quality},{timestamp:.3}" strings (vpdq_util.py,
// VpdqCompactFeature.__str__ and vpdq_to_json), timestamps 0, 1, 2, 12.5,
// 99, 100, 101, 123.456 seconds.
const pythonVPDQ = `["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d,100,0.0", "4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a,98,1.0", "dbc1b4c900ffe48d575b5da5c638040125f65db0fe3e24494b76ea986457d986,80,2.0", "084fed08b978af4d7d196a7446a86b58009e636b611db16211b65a9aadff29c5,49,12.5", "e52d9c508c502347344d8c07ad91cbd6068afc75ff6292f062a09ca381c89e71,50,99.0", "e77b9a9ae9e30b0dbdb6f510a264ef9de781501d7b6b92ae89eb059c5ab743db,100,1e+02", "67586e98fad27da0b9968bc039a1ef34c939b9b8e523a8bef89d478608c5ecf6,0,1.01e+02", "ca358758f6d27e6cf45272937977a748fd88391db679ceda7dc7bf1f005ee879,77,1.23e+02"]`

// TestFormatVPDQSecondsPython checks the timestamp against Python's
// f"{ms/1000:.3}", computed with CPython 3 for each row.
func TestFormatVPDQSecondsPython(t *testing.T) {
	for _, c := range []struct {
		ms   uint32
		want string
	}{
		{0, "0.0"}, {1, "0.001"}, {9, "0.009"}, {10, "0.01"}, {99, "0.099"},
		{100, "0.1"}, {999, "0.999"}, {1000, "1.0"}, {1234, "1.23"}, {1500, "1.5"},
		{9995, "9.99"}, {9996, "10.0"}, {12345, "12.3"}, {99949, "99.9"},
		{99950, "1e+02"}, {99999, "1e+02"}, {100000, "1e+02"}, {123456, "1.23e+02"},
		{999999, "1e+03"}, {1000000, "1e+03"}, {4294967295, "4.29e+06"},
		{5, "0.005"}, {50, "0.05"}, {450, "0.45"}, {1005, "1.0"}, {2675, "2.67"},
	} {
		if got := FormatVPDQSeconds(c.ms); got != c.want {
			t.Errorf("FormatVPDQSeconds(%d) = %q, want %q", c.ms, got, c.want)
		}
	}
}

func TestVPDQInterchangeRoundTrip(t *testing.T) {
	frames, err := ParseVPDQJSON(pythonVPDQ)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 8 {
		t.Fatalf("%d frames, want 8", len(frames))
	}
	if f := frames[3]; f.Quality != 49 || f.Timestamp != 12500 || f.Hash[0] != 0x08 {
		t.Errorf("frame 3 = %d,%d,%x", f.Quality, f.Timestamp, f.Hash[:2])
	}
	if got := FormatVPDQJSON(frames); got != pythonVPDQ {
		t.Errorf("format(parse(python)) differs:\n got %s\nwant %s", got, pythonVPDQ)
	}
	s, err := ParseSignal("vpdq", pythonVPDQ)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSignal(s); err != nil {
		t.Fatal(err)
	}
	// The TYPE:VALUE form writes the seconds to the millisecond, so that
	// it reads back to the same value, which the pytx form does not past
	// three significant digits (101.0 s is written 1.01e+02).
	exact := FormatVPDQ(frames)
	if !strings.Contains(exact, ",49,12.500\"") || !strings.Contains(exact, ",0,101.000\"") {
		t.Errorf("FormatVPDQ = %s", exact)
	}
	if typ, v := SignalValue(s); typ != SignalVPDQ || v != exact {
		t.Errorf("SignalValue = %s %s", typ, v)
	}
	if got := FormatSignal(s); got != "vpdq:"+exact {
		t.Errorf("FormatSignal = %s", got)
	}
	back, err := ParseSignal("vpdq", exact)
	if err != nil || !bytes.Equal(back.GetVpdq(), s.GetVpdq()) {
		t.Errorf("ParseSignal(FormatVPDQ) = %x, %v; want %x", back.GetVpdq(), err, s.GetVpdq())
	}
	if len(s.GetVpdq()) != 8*VPDQFrameSize {
		t.Errorf("wire value %d bytes, want %d", len(s.GetVpdq()), 8*VPDQFrameSize)
	}
	// Python's own parser accepts what it does not write: upper-case hex,
	// "+5", exponents; all of it lands on the same frames.
	alt := strings.Replace(pythonVPDQ, "6e340b9cffb37a989ca544e6bb780a2c", "6E340B9CFFB37A989CA544E6BB780A2C", 1)
	alt = strings.Replace(alt, ",98,1.0", ",+98,1000e-3", 1)
	alt = strings.Replace(alt, "\", \"", "\",\"", -1)
	s2, err := ParseSignal("vpdq", alt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(SignalKey(s), SignalKey(s2)) {
		t.Error("equivalent interchange strings give different keys")
	}
}

func vpdqFrame(h byte, q uint8, ts uint32) VPDQFrame {
	var f VPDQFrame
	for i := range f.Hash {
		f.Hash[i] = h + byte(i)
	}
	f.Quality, f.Timestamp = q, ts
	return f
}

func TestCanonicalVPDQ(t *testing.T) {
	a, b, c := vpdqFrame(1, 100, 0), vpdqFrame(2, 90, 1000), vpdqFrame(3, 80, 2000)
	want, err := EncodeVPDQ([]VPDQFrame{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]VPDQFrame{
		{c, a, b},
		{a, b, b, c},                      // exact duplicate
		{a, b, vpdqFrame(2, 90, 1500), c}, // consecutive same hash: the first stays
		{a, vpdqFrame(2, 70, 1000), b, c}, // same hash and time: the higher quality stays
	} {
		got, err := EncodeVPDQ(in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("EncodeVPDQ(%v) is not canonical", in)
		}
	}
	// Same timestamp, hashes in byte order: a non-consecutive repeat stays.
	got, err := EncodeVPDQ([]VPDQFrame{vpdqFrame(9, 50, 0), vpdqFrame(1, 50, 0), vpdqFrame(1, 50, 5)})
	if err != nil {
		t.Fatal(err)
	}
	fr, err := DecodeVPDQ(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(fr) != 3 || fr[0].Hash[0] != 1 || fr[1].Hash[0] != 9 || fr[2].Hash[0] != 1 || fr[2].Timestamp != 5 {
		t.Errorf("decoded %v", fr)
	}
}

func TestDecodeVPDQRejects(t *testing.T) {
	enc := func(fs ...VPDQFrame) []byte {
		var b []byte
		for _, f := range fs {
			b = append(b, f.Hash[:]...)
			b = append(b, f.Quality)
			b = binary.BigEndian.AppendUint32(b, f.Timestamp)
		}
		return b
	}
	a, b := vpdqFrame(1, 100, 0), vpdqFrame(2, 90, 1000)
	many := make([]VPDQFrame, MaxVPDQFrames+1)
	for i := range many {
		many[i] = vpdqFrame(byte(i%2), 50, uint32(i))
	}
	for _, c := range []struct {
		name string
		v    []byte
		want string
	}{
		{"empty", nil, "no frames"},
		{"short", enc(a)[:36], "not a whole number"},
		{"long", append(enc(a), 0), "not a whole number"},
		{"quality", enc(vpdqFrame(1, 101, 0)), "quality 101"},
		{"order", enc(b, a), "canonical order"},
		{"same time hash order", enc(vpdqFrame(2, 1, 0), vpdqFrame(1, 1, 0)), "canonical order"},
		{"duplicate", enc(a, a), "same hash"},
		{"consecutive same hash", enc(a, vpdqFrame(1, 100, 5)), "same hash"},
		{"too many", enc(many...), "1501 frames, at most 1500"},
	} {
		_, err := DecodeVPDQ(c.v)
		if !errors.Is(err, ErrSignal) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want ErrSignal mentioning %q", c.name, err, c.want)
		}
		if err := CheckSignal(&pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: c.v}}); err == nil {
			t.Errorf("%s: CheckSignal accepts it", c.name)
		}
	}
	if _, err := DecodeVPDQ(enc(many[:MaxVPDQFrames]...)); err != nil {
		t.Errorf("%d frames: %v", MaxVPDQFrames, err)
	}
}

func TestParseVPDQErrors(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, c := range []struct {
		in   string
		want []string
	}{
		{``, []string{"JSON list"}},
		{`[]`, []string{"no frames"}},
		{`{"a":1}`, []string{"JSON list"}},
		{`[1]`, []string{"JSON list"}},
		{`["` + h + `,100"]`, []string{"frame 0", "want 3 comma-separated fields"}},
		{`["` + h[:62] + `,100,0"]`, []string{"want 64 hex characters, got 62"}},
		{`["` + h[:62] + `zz,100,0"]`, []string{"not hex"}},
		{`["` + h + `,101,0"]`, []string{`quality "101"`}},
		{`["` + h + `,-1,0"]`, []string{`quality "-1"`}},
		{`["` + h + `,5.0,0"]`, []string{`quality "5.0"`}},
		{`["` + h + `,5,-1"]`, []string{`timestamp "-1"`}},
		{`["` + h + `,5,nan"]`, []string{`timestamp "nan"`}},
		{`["` + h + `,5,inf"]`, []string{`timestamp "inf"`}},
		{`["` + h + `,5,0x10"]`, []string{`timestamp "0x10"`}},
		{`["` + h + `,5,5e9"]`, []string{`timestamp "5e9"`}},
		{`["` + h + `,5,"]`, []string{`timestamp ""`}},
	} {
		_, err := ParseSignal("vpdq", c.in)
		if !errors.Is(err, ErrSignal) {
			t.Errorf("%q: err %v, want ErrSignal", c.in, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", c.in, err, w)
			}
		}
	}
	var b strings.Builder
	b.WriteString("[")
	for i := range MaxVPDQFrames + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		f := vpdqFrame(byte(i), 50, uint32(i)*1000)
		b.WriteString(`"` + strings.TrimSuffix(strings.TrimPrefix(FormatVPDQJSON([]VPDQFrame{f}), `["`), `"]`) + `"`)
	}
	b.WriteString("]")
	if _, err := ParseSignal("vpdq", b.String()); err == nil || !strings.Contains(err.Error(), "1501 frames, at most 1500") {
		t.Errorf("1501 frames: %v", err)
	}
}

func TestVPDQSignalKey(t *testing.T) {
	a, b := vpdqFrame(1, 100, 0), vpdqFrame(2, 90, 1000)
	v1, _ := EncodeVPDQ([]VPDQFrame{a, b})
	v2, _ := EncodeVPDQ([]VPDQFrame{b, a, a})
	v3, _ := EncodeVPDQ([]VPDQFrame{a})
	k1 := SignalKey(&pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: v1}})
	k2 := SignalKey(&pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: v2}})
	k3 := SignalKey(&pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: v3}})
	if len(k1) != 33 || k1[0] != 0x06 {
		t.Fatalf("key %x: want tag 06 and 32 digest bytes", k1)
	}
	if !bytes.Equal(k1, k2) || bytes.Equal(k1, k3) {
		t.Errorf("keys %x %x %x", k1, k2, k3)
	}
	if TypeOf(&pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: v1}}) != SignalVPDQ {
		t.Error("TypeOf")
	}
}

// TestVPDQMaxFitsEntry checks SPEC 2.4 against 7.6: an addition with a
// vpdq signal of MaxVPDQFrames frames, the most labels with the longest
// texts and the longest case reference, and the longest federation name,
// is at most MaxEntrySize.
func TestVPDQMaxFitsEntry(t *testing.T) {
	frames := make([]VPDQFrame, MaxVPDQFrames)
	for i := range frames {
		frames[i] = vpdqFrame(byte(i), 100, uint32(i)*1000)
	}
	v, err := EncodeVPDQ(frames)
	if err != nil {
		t.Fatal(err)
	}
	var labels []*pb.Label
	for range MaxLabels {
		labels = append(labels, &pb.Label{Slug: "other", Text: strings.Repeat("x", MaxLabelText)})
	}
	body := header()
	body.Federation = strings.Repeat("f", MaxFederationLen)
	body.Seq = 1 << 62
	body.Prev = fakeID(1)
	body.Payload = &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: []*pb.Signal{{Value: &pb.Signal_Vpdq{Vpdq: v}}},
		Labels:  labels,
		CaseRef: strings.Repeat("c", MaxCaseRefLen),
	}}
	raw := rawSign(t, seedKey(1), body)
	if len(raw) > MaxEntrySize {
		t.Fatalf("largest vpdq addition is %d bytes, over %d", len(raw), MaxEntrySize)
	}
	t.Logf("largest vpdq addition: %d bytes of %d", len(raw), MaxEntrySize)
	// A realistic one decodes and passes every check.
	body.Seq, body.Prev, body.Federation = 1, nil, header().Federation
	body.GetAddition().Labels = []*pb.Label{mustLabel("attacker-manifesto")}
	if _, err := Decode(rawSign(t, seedKey(1), body)); err != nil {
		t.Fatalf("max-frames addition: %v", err)
	}
}
