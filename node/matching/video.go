package matching

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/node/match/vmatch"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// videoIndex is the frame index of every video (vpdq signal) some
// addition carries: a vmatch.Index under a ref per distinct signal key,
// built from the store's vpdqframes index at start-up and told of every
// addition stored since. Like the PDQ index it never forgets a video: the
// status of its attestations is read from the store at query time.
type videoIndex struct {
	x  *vmatch.Index // guards itself
	mu sync.RWMutex  // guards keys and refs
	// keys[ref] is the signal key of the video stored under ref; refs
	// the reverse, so that a video carried by a second addition is added
	// once.
	keys [][]byte
	refs map[string]uint64
}

// videoParams are the policy's thresholds for matching a video against
// stored videos (config.Policy; vmatch's definition).
func (m *Matching) videoParams() vmatch.Params {
	return vmatch.Params{
		MinQuality:      m.policy.MinQuality,
		MaxDistance:     m.policy.PDQThreshold,
		QueryPercent:    m.policy.VPDQQueryMatch,
		ComparedPercent: m.policy.VPDQComparedMatch,
	}
}

// loadVideos builds the video index from the store, returning how long
// reading the videos (and decoding them) and building the index took.
func (m *Matching) loadVideos() (read, took time.Duration, err error) {
	start := time.Now()
	v := &videoIndex{x: vmatch.NewIndex(m.policy.MinQuality), refs: map[string]uint64{}}
	// Frames go straight into a Builder as they are decoded: the decoded
	// videos are not kept, and the hash and ref arrays are sized once.
	nv, nf, err := m.store.VPDQSize()
	if err != nil {
		v.x.Close()
		return 0, 0, err
	}
	b := v.x.NewBuilder(nv, nf)
	v.keys = make([][]byte, 0, nv)
	err = readVideos(m.store, func(k, val []byte) error {
		frames, err := protocol.DecodeVPDQ(val)
		if err != nil {
			return fmt.Errorf("stored video %x: %w", k, err)
		}
		ref := uint64(len(v.keys))
		k = bytes.Clone(k) // not a slice of the batch, which would keep it
		v.keys = append(v.keys, k)
		v.refs[string(k)] = ref
		return b.Add(ref, frames)
	})
	if err != nil {
		v.x.Close()
		return 0, 0, err
	}
	read = time.Since(start)
	b.Finish()
	m.videos = v
	return read, time.Since(start), nil
}

// videoBatch is a run of stored videos copied out of the store: key i is
// buf[ends[2i-1]:ends[2i]] (from 0 for i == 0), its value
// buf[ends[2i]:ends[2i+1]].
type videoBatch struct {
	buf  []byte
	ends []int
}

// readVideos calls fn with the key and value of every stored video, as
// store.VPDQVideos does, but reads the store in a goroutine of its own,
// so that reading the store and fn's decoding and indexing take a core
// each: the reader copies the videos out in batches of about 1 MB (the
// store's are valid only during its call) and hands them over a channel.
// k and val are valid only during the call: fn must copy what it keeps.
// The first error, the reader's or
// fn's, stops both and is returned.
func readVideos(st *store.Store, fn func(k, val []byte) error) error {
	const batchBytes = 1 << 20
	batches := make(chan videoBatch, 4)
	stop := make(chan struct{})
	errStopped := errors.New("stopped")
	var readErr error
	go func() {
		defer close(batches)
		var bt videoBatch
		send := func() bool {
			select {
			case batches <- bt:
				bt = videoBatch{}
				return true
			case <-stop:
				return false
			}
		}
		readErr = st.VPDQVideos(func(k, val []byte) error {
			if bt.buf == nil {
				bt.buf = make([]byte, 0, max(batchBytes, len(k)+len(val)))
			}
			bt.buf = append(bt.buf, k...)
			bt.ends = append(bt.ends, len(bt.buf))
			bt.buf = append(bt.buf, val...)
			bt.ends = append(bt.ends, len(bt.buf))
			if len(bt.buf) >= batchBytes && !send() {
				return errStopped
			}
			return nil
		})
		if readErr == nil && len(bt.ends) > 0 {
			send()
		}
	}()
	var fnErr error
	for bt := range batches {
		if fnErr != nil {
			continue // drain, so that the reader ends
		}
		from := 0
		for i := 0; i < len(bt.ends); i += 2 {
			k := bt.buf[from:bt.ends[i]:bt.ends[i]]
			val := bt.buf[bt.ends[i]:bt.ends[i+1]]
			from = bt.ends[i+1]
			if fnErr = fn(k, val); fnErr != nil {
				close(stop)
				break
			}
		}
	}
	if fnErr != nil {
		return fnErr
	}
	return readErr
}

// addVideo puts the video of a stored addition's vpdq signal (key k) into
// the index unless it is there.
func (v *videoIndex) add(k []byte, frames []vmatch.Frame) error {
	v.mu.Lock()
	if _, ok := v.refs[string(k)]; ok {
		v.mu.Unlock()
		return nil
	}
	ref := uint64(len(v.keys))
	v.keys = append(v.keys, bytes.Clone(k))
	v.refs[string(k)] = ref
	// Added under the lock, so that two writers of one video cannot both
	// add it; queries do not take it while they search.
	defer v.mu.Unlock()
	return v.x.Add(ref, frames)
}

func (v *videoIndex) key(ref uint64) []byte {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.keys[ref]
}

// storedVideo tells the video index of a vpdq signal s of an addition now
// stored.
func (m *Matching) storedVideo(s *pb.Signal) {
	frames, err := protocol.DecodeVPDQ(s.GetVpdq())
	if err == nil {
		err = m.videos.add(protocol.SignalKey(s), frames)
	}
	if err != nil {
		// The store took the addition, so its signal is valid; an error
		// here is a bug, and the video only misses near matches.
		m.log.Error("video not indexed for near matching", "key", fmt.Sprintf("%x", protocol.SignalKey(s)), "err", err)
	}
}

// matchVPDQ answers a vpdq query: the attestations of every stored video
// that matches it under the policy's thresholds (with the comparison in
// FoundAttestation.Video), then those of the same value stored exactly
// when the index did not find it (all its frames below min_quality), and
// the frame hits: stored images near a frame of the query.
func (m *Matching) matchVPDQ(q Query) (Found, error) {
	frames, err := protocol.DecodeVPDQ(q.Signal.GetVpdq())
	if err != nil {
		return Found{}, err
	}
	p := m.videoParams()
	prepared := vmatch.Prepare(frames, p.MinQuality)
	var f Found
	found := map[string]bool{}
	if len(prepared) > 0 {
		results, err := m.videos.x.Query(frames, p)
		if err != nil {
			return Found{}, err
		}
		for _, r := range results {
			if !r.Match {
				break // matches come first
			}
			k := m.videos.key(r.Ref)
			found[string(k)] = true
			stored, err := m.lookup(k)
			if err != nil {
				return Found{}, err
			}
			vm := videoMatch(r)
			for _, a := range stored.Attestations {
				a.Video = vm
				f.Attestations = append(f.Attestations, a)
			}
		}
		if f.FrameHits, err = m.frameHits(prepared); err != nil {
			return Found{}, err
		}
	} else {
		f.Skipped = fmt.Sprintf("every frame's quality is below min_quality %d: not near-matched", m.policy.MinQuality)
	}
	if k := protocol.SignalKey(q.Signal); !found[string(k)] && m.exact.has(k) {
		stored, err := m.lookup(k)
		if err != nil {
			return Found{}, err
		}
		f.Attestations = append(f.Attestations, stored.Attestations...)
	}
	f.Verdict = m.verdict(append(slices.Clip(f.Attestations), f.FrameHits...))
	return f, nil
}

func videoMatch(r vmatch.Result) *VideoMatch {
	vm := &VideoMatch{
		QueryPercent: r.QueryPercent, ComparedPercent: r.ComparedPercent,
		QueryFrames: r.QueryFrames, QueryMatched: r.QueryMatched,
		ComparedFrames: r.ComparedFrames, ComparedMatched: r.ComparedMatched,
	}
	for _, s := range r.Segments {
		vm.Segments = append(vm.Segments, Segment{FromMs: s.From, ToMs: s.To})
	}
	return vm
}

// frameHits looks each frame (quality filtered and deduplicated) up in the
// PDQ index of stored images within the policy's threshold, and returns
// the attestations of each stored image hit, with its smallest distance
// and the timestamps of the frames within the threshold: nearest first,
// then by hash, then in the store's order.
func (m *Matching) frameHits(frames []vmatch.Frame) ([]FoundAttestation, error) {
	type hit struct {
		hash     match.Hash
		distance int
		times    []uint32
	}
	hits := map[match.Hash]*hit{}
	for _, fr := range frames {
		for _, r := range m.pdq.Query(fr.Hash, m.policy.PDQThreshold) {
			h := hits[r.Hash]
			if h == nil {
				h = &hit{hash: r.Hash, distance: r.Distance}
				hits[r.Hash] = h
			}
			h.distance = min(h.distance, r.Distance)
			// The index may hold a hash twice (see pdqCandidates).
			if n := len(h.times); n == 0 || h.times[n-1] != fr.Timestamp {
				h.times = append(h.times, fr.Timestamp)
			}
		}
	}
	sorted := make([]*hit, 0, len(hits))
	for _, h := range hits {
		sorted = append(sorted, h)
	}
	slices.SortFunc(sorted, func(a, b *hit) int {
		if c := cmp.Compare(a.distance, b.distance); c != 0 {
			return c
		}
		return bytes.Compare(a.hash[:], b.hash[:])
	})
	var out []FoundAttestation
	for _, h := range sorted {
		stored, err := m.lookup(append([]byte{pdqTag}, h.hash[:]...))
		if err != nil {
			return nil, err
		}
		for _, a := range stored.Attestations {
			a.Hash, a.Distance, a.FrameTimesMs = h.hash, h.distance, h.times
			out = append(out, a)
		}
	}
	return out, nil
}

// watchedVideos are the watched videos (watchlist) in a frame index, for
// near matching of every video addition stored.
type watchedVideos struct {
	x     *vmatch.Index // guards itself
	mu    sync.RWMutex  // guards next, byKey, keys
	next  uint64
	byKey map[string]watchedVideo
	keys  map[uint64][]byte
}

type watchedVideo struct {
	ref    uint64
	frames []vmatch.Frame
	value  []byte // the wire value
}

func newWatchedVideos(minQuality int) *watchedVideos {
	return &watchedVideos{x: vmatch.NewIndex(minQuality), byKey: map[string]watchedVideo{}, keys: map[uint64][]byte{}}
}

// add indexes the watched video with key k and value v, unless it is.
func (w *watchedVideos) add(k, v []byte) error {
	frames, err := protocol.DecodeVPDQ(v)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.byKey[string(k)]; ok {
		return nil
	}
	ref := w.next
	if err := w.x.Add(ref, frames); err != nil {
		return err
	}
	w.next++
	w.byKey[string(k)] = watchedVideo{ref: ref, frames: frames, value: bytes.Clone(v)}
	w.keys[ref] = bytes.Clone(k)
	return nil
}

func (w *watchedVideos) remove(k []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.byKey[string(k)]
	if !ok {
		return
	}
	w.x.Remove(v.ref, v.frames)
	delete(w.byKey, string(k))
	delete(w.keys, v.ref)
}

func (w *watchedVideos) get(k []byte) (watchedVideo, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	v, ok := w.byKey[string(k)]
	return v, ok
}

// watchedVideoCandidates returns the watched videos that the video s
// (key k) of an addition matches under the policy's thresholds.
func (m *Matching) watchedVideoCandidates(k []byte, s *pb.Signal) []watchCandidate {
	w := m.watchlist.videos
	if w.x.Videos() == 0 {
		return nil
	}
	frames, err := protocol.DecodeVPDQ(s.GetVpdq())
	if err != nil {
		return nil
	}
	results, err := w.x.Query(frames, m.videoParams())
	if err != nil {
		m.log.Error("watchlist: checking a video failed; its alerts may be missing", "err", err)
		return nil
	}
	var out []watchCandidate
	for _, r := range results {
		if !r.Match {
			break
		}
		w.mu.RLock()
		wk, ok := w.keys[r.Ref]
		var wv watchedVideo
		if ok {
			wv = w.byKey[string(wk)]
		}
		w.mu.RUnlock()
		if ok && !bytes.Equal(wk, k) { // the same key is the exact candidate
			out = append(out, watchCandidate{watched: wk, signal: k, watchedSig: &pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: wv.value}}, signalSig: s})
		}
	}
	return out
}
