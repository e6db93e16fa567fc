package vpdq

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/staydown/staydown/node/match/pdq"
	"github.com/staydown/staydown/protocol"
)

// Limits. A frame larger than MaxDimension on a side or MaxPixels in all is
// refused before decoding (8K UHD, 7680x4320, fits).
const (
	MaxDimension = 8192
	MaxPixels    = 1 << 26

	// DefaultTimeout is the most ffmpeg may run on one video.
	DefaultTimeout = 30 * time.Minute
	// DefaultMaxBytes is the most Hash copies from its reader.
	DefaultMaxBytes = 2 << 30
)

// Options control hashing. The zero value hashes one frame a second at full
// size with ffmpeg from PATH.
type Options struct {
	// FFmpeg is the path of the ffmpeg binary; "" finds it on PATH.
	FFmpeg string
	// FFprobe is the path of ffprobe; "" takes the one beside FFmpeg when
	// FFmpeg is set, else finds it on PATH.
	FFprobe string
	// EveryFrame hashes every frame (the reference's setting) instead of
	// one a second.
	EveryFrame bool
	// Size, if positive, scales every frame to Size x Size before hashing,
	// as the reference's -128x128 hashes (Size 128).
	Size int
	// Timeout caps ffmpeg's run time; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxBytes caps what Hash reads from its reader; 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// TempDir is where Hash spills its input; "" means os.TempDir().
	TempDir string
	// KeepDuplicates keeps consecutive frames with identical hashes.
	KeepDuplicates bool

	// frameHook, for tests, runs after each frame is read from ffmpeg.
	frameHook func(n int, pid int)
}

// Frame is the hash of one frame.
type Frame struct {
	PDQ       pdq.Hash
	Quality   int     // 0..100
	Frame     int     // frame number, from 0, in presentation order
	Timestamp float64 // seconds: Frame / frame rate
}

// Video is a video's hash and what ffprobe said of it.
type Video struct {
	Frames        []Frame
	Width, Height int     // the hashed frame size (after rotation and Size)
	Rotation      int     // degrees of the display rotation applied, 0, 90, 180 or 270
	FrameRate     float64 // frames a second
	Duration      float64 // seconds, as declared (0 if unknown)
	Decoded       int     // frames decoded and passed to the hasher before dedupe
}

// Hash hashes the video read from r. It copies r into a temporary file of
// at most MaxBytes (see the package doc, "Input that is not a file") and
// removes it before returning.
func Hash(ctx context.Context, r io.Reader, opts Options) (Video, error) {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	f, err := os.CreateTemp(opts.TempDir, "staydown-video-*")
	if err != nil {
		return Video{}, fmt.Errorf("vpdq: spilling the video to a temporary file: %w", err)
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Video{}, fmt.Errorf("vpdq: spilling the video to a temporary file: %w", err)
	}
	if n > limit {
		return Video{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return HashFile(ctx, f.Name(), opts)
}

// HashFile hashes the video file at path.
func HashFile(ctx context.Context, path string, opts Options) (Video, error) {
	ffmpeg, ffprobe, err := tools(opts)
	if err != nil {
		return Video{}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return Video{}, fmt.Errorf("vpdq: %w", err)
	}
	if st.Size() == 0 {
		return Video{}, fmt.Errorf("%w: %q is empty", ErrNotVideo, path)
	}
	info, err := headerInfo(path, st.Size())
	if err == errNotPlainMP4 {
		info, err = probe(ctx, ffprobe, path)
	}
	if err != nil {
		return Video{}, err
	}
	return decode(ctx, ffmpeg, path, info, opts)
}

// headerInfo reads the stream information of a plain MP4 or MOV file
// itself (readMP4), refusing a frame over the limits as probe does;
// errNotPlainMP4 when ffprobe must be asked instead.
func headerInfo(path string, size int64) (streamInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return streamInfo{}, fmt.Errorf("vpdq: %w", err)
	}
	defer f.Close()
	info, err := readMP4(f, size)
	if err != nil {
		return streamInfo{}, err
	}
	if err := checkSize(info.width, info.height); err != nil {
		return streamInfo{}, err
	}
	return info, nil
}

// checkSize refuses a frame larger than MaxDimension on a side or MaxPixels
// in all.
func checkSize(w, h int) error {
	if w > MaxDimension || h > MaxDimension || int64(w)*int64(h) > MaxPixels {
		return fmt.Errorf("%w: frame size %dx%d (at most %d on a side and %d pixels)",
			ErrTooLarge, w, h, MaxDimension, MaxPixels)
	}
	return nil
}

// tools finds ffmpeg and ffprobe.
func tools(opts Options) (ffmpeg, ffprobe string, err error) {
	find := func(name, explicit string) (string, error) {
		if explicit == "" {
			p, err := exec.LookPath(name)
			if err != nil {
				return "", fmt.Errorf("%w: %s is not on PATH", ErrNoFFmpeg, name)
			}
			return p, nil
		}
		st, err := os.Stat(explicit)
		if err != nil {
			return "", fmt.Errorf("%w: %s %q: %v", ErrNoFFmpeg, name, explicit, errors.Unwrap(err))
		}
		if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("%w: %s %q is not an executable file", ErrNoFFmpeg, name, explicit)
		}
		return explicit, nil
	}
	if ffmpeg, err = find("ffmpeg", opts.FFmpeg); err != nil {
		return "", "", err
	}
	probePath := opts.FFprobe
	if probePath == "" && opts.FFmpeg != "" {
		probePath = filepath.Join(filepath.Dir(opts.FFmpeg), "ffprobe")
	}
	if ffprobe, err = find("ffprobe", probePath); err != nil {
		return "", "", err
	}
	return ffmpeg, ffprobe, nil
}

// streamInfo is what probe learns of the first video stream.
type streamInfo struct {
	width, height int // displayed, after rotation
	rotation      int
	rate          float64
	duration      float64
}

// probeTimeout bounds ffprobe, which reads only the header and a few
// packets.
const probeTimeout = time.Minute

func probe(parent context.Context, ffprobe, path string) (streamInfo, error) {
	ctx, cancel := context.WithTimeout(parent, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,r_frame_rate,avg_frame_rate,duration:stream_side_data=rotation:stream_tags=rotate:format=duration",
		"-of", "json", "--", path)
	var stdout bytes.Buffer
	stderr := &tail{max: 4096}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if parent.Err() != nil {
			return streamInfo{}, context.Cause(parent)
		}
		if ctx.Err() != nil {
			return streamInfo{}, fmt.Errorf("%w: ffprobe ran longer than %v", ErrTimeout, probeTimeout)
		}
		if isExecError(err) {
			return streamInfo{}, fmt.Errorf("%w: running ffprobe: %v", ErrNoFFmpeg, err)
		}
		if msg, ok := stderr.find("Picture size", "is invalid"); ok {
			// ffmpeg's own limit (av_image_check_size), above ours: the
			// header declares an absurd frame.
			return streamInfo{}, fmt.Errorf("%w: ffprobe: %s", ErrTooLarge, msg)
		}
		return streamInfo{}, fmt.Errorf("%w: ffprobe: %s", ErrNotVideo, stderr.last())
	}
	var out struct {
		Streams []struct {
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			RFrameRate   string `json:"r_frame_rate"`
			AvgFrameRate string `json:"avg_frame_rate"`
			Duration     string `json:"duration"`
			SideData     []struct {
				Rotation *float64 `json:"rotation"`
			} `json:"side_data_list"`
			Tags struct {
				Rotate string `json:"rotate"`
			} `json:"tags"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return streamInfo{}, fmt.Errorf("%w: ffprobe's output: %v", ErrMalformed, err)
	}
	if len(out.Streams) == 0 {
		return streamInfo{}, fmt.Errorf("%w: no video stream", ErrNotVideo)
	}
	s := out.Streams[0]
	if s.Width <= 0 || s.Height <= 0 {
		return streamInfo{}, fmt.Errorf("%w: video stream has no frame size (%dx%d)", ErrMalformed, s.Width, s.Height)
	}
	if err := checkSize(s.Width, s.Height); err != nil {
		return streamInfo{}, err
	}
	info := streamInfo{width: s.Width, height: s.Height}
	rot := 0.0
	for _, sd := range s.SideData {
		if sd.Rotation != nil {
			rot = *sd.Rotation
		}
	}
	if rot == 0 && s.Tags.Rotate != "" {
		rot, _ = strconv.ParseFloat(s.Tags.Rotate, 64)
	}
	info.rotation = ((int(math.Round(rot/90))*90)%360 + 360) % 360
	if info.rotation == 90 || info.rotation == 270 {
		info.width, info.height = info.height, info.width
	}
	info.rate = parseRate(s.AvgFrameRate)
	if info.rate == 0 {
		info.rate = parseRate(s.RFrameRate)
	}
	if info.rate == 0 {
		return streamInfo{}, fmt.Errorf("%w: video stream has no frame rate (avg %q, r %q)", ErrMalformed, s.AvgFrameRate, s.RFrameRate)
	}
	for _, d := range []string{s.Duration, out.Format.Duration} {
		if v, err := strconv.ParseFloat(d, 64); err == nil && v > 0 && !math.IsInf(v, 0) {
			info.duration = v
			break
		}
	}
	return info, nil
}

// parseRate parses ffprobe's "num/den" frame rate; 0 if absent or absurd.
func parseRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	n, err1 := strconv.ParseFloat(num, 64)
	d := 1.0
	var err2 error
	if ok {
		d, err2 = strconv.ParseFloat(den, 64)
	}
	if err1 != nil || err2 != nil || d <= 0 || n <= 0 {
		return 0
	}
	r := n / d
	if r < 0.01 || r > 1000 || math.IsNaN(r) {
		return 0
	}
	return r
}

func isExecError(err error) bool {
	var ee *exec.Error
	var pe *os.PathError
	return errors.As(err, &ee) || errors.As(err, &pe)
}

// timeLimit is the time allowed for decoding a video of the given declared
// duration: two minutes plus twenty times real time (room for a loaded
// machine and the race detector), never more than the cap.
func timeLimit(duration float64, limit time.Duration) time.Duration {
	if limit <= 0 {
		limit = DefaultTimeout
	}
	if duration <= 0 {
		return limit
	}
	d := 2*time.Minute + time.Duration(duration*20*float64(time.Second))
	return min(d, limit)
}

// job is one frame for a hashing worker.
type job struct {
	index int // position in ffmpeg's output
	buf   []byte
}

// Sampling constants (package doc, "What is hashed").
const (
	// maxTimestamps bounds the sampled frames' timestamps kept while
	// ffmpeg runs: far more than a video of DefaultTimeout's length has
	// seconds, so only a file with absurd timestamps reaches it.
	maxTimestamps = 1 << 20
)

// sampleInterval is the default sampling's interval in whole seconds for a
// video of the given duration: one second, widened evenly to
// ceil(duration/MaxVPDQFrames) seconds for a video longer than
// protocol.MaxVPDQFrames seconds (SPEC.md 7.6), so that at most that many
// frames are sampled. An unknown duration (0) gives one second; decode thins
// afterwards (thinInterval).
func sampleInterval(duration float64) int {
	if !(duration > protocol.MaxVPDQFrames) {
		return 1
	}
	return int(math.Ceil(duration / protocol.MaxVPDQFrames))
}

// thinInterval is the interval that keeps at most protocol.MaxVPDQFrames
// frames on a grid of whole seconds whose last frame is at last seconds
// (floor(last/interval) < MaxVPDQFrames).
func thinInterval(last float64) int {
	return int(math.Floor(max(last, 0)/protocol.MaxVPDQFrames)) + 1
}

// thin keeps the first frame of each interval of the given length on the
// whole-second grid (frames in time order).
func thin(frames []Frame, interval int) []Frame {
	out := frames[:0]
	prev := -1
	for _, f := range frames {
		slot := int(math.Floor(max(f.Timestamp, 0) / float64(interval)))
		if len(out) > 0 && slot <= prev {
			continue
		}
		prev = slot
		out = append(out, f)
	}
	return out
}

// decode runs ffmpeg once and hashes the frames it pipes: every frame, or
// in sampling mode (!opts.EveryFrame) the first frame at or after each
// whole interval of the video's time (package doc, "What is hashed").
func decode(parent context.Context, ffmpeg, path string, info streamInfo, opts Options) (Video, error) {
	v := Video{Width: info.width, Height: info.height, Rotation: info.rotation, FrameRate: info.rate, Duration: info.duration}
	if opts.Size > 0 {
		if opts.Size > MaxDimension {
			return Video{}, fmt.Errorf("%w: scaling to %dx%d", ErrTooLarge, opts.Size, opts.Size)
		}
		v.Width, v.Height = opts.Size, opts.Size
	}
	filter := fmt.Sprintf("scale=w=%d:h=%d:flags=area,format=rgb24", v.Width, v.Height)
	interval := sampleInterval(info.duration)
	// In sampling mode the select filter keeps the first frame of each
	// interval of the grid (t is the frame's time from the video's start,
	// as ffmpeg shifts it), and the metadata filters print each kept
	// frame's pts_time to descriptor 3: the frame's timestamp, in order.
	var times *timestamps
	if !opts.EveryFrame {
		filter = fmt.Sprintf("select='isnan(prev_selected_t)+gte(floor(max(t\\,0)/%[1]d)-floor(max(prev_selected_t\\,0)/%[1]d)\\,1)',"+
			"metadata=mode=add:key=staydown:value=1,metadata=mode=print:key=staydown:file=/dev/fd/3:direct=1,%[2]s", interval, filter)
		times = &timestamps{}
	}
	limit := timeLimit(info.duration, opts.Timeout)
	ctx, cancel := context.WithTimeoutCause(parent, limit, ErrTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-xerror",
		"-i", path, "-map", "0:v:0", "-an", "-sn", "-dn",
		"-vf", filter, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	stderr := &tail{max: 4096}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	var timesDone chan struct{}
	if times != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return Video{}, fmt.Errorf("vpdq: %w", err)
		}
		defer r.Close()
		cmd.ExtraFiles = []*os.File{w}
		timesDone = make(chan struct{})
		go func() {
			defer close(timesDone)
			times.read(r)
		}()
		defer w.Close() // also closed right after Start: ffmpeg holds the write end
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Video{}, fmt.Errorf("vpdq: %w", err)
	}
	if err := cmd.Start(); err != nil {
		if parent.Err() != nil {
			return Video{}, context.Cause(parent)
		}
		if ctx.Err() != nil {
			return Video{}, fmt.Errorf("%w: no time left to start ffmpeg (limit %v)", ErrTimeout, limit)
		}
		return Video{}, fmt.Errorf("%w: starting ffmpeg: %v", ErrNoFFmpeg, err)
	}
	if times != nil {
		cmd.ExtraFiles[0].Close()
	}

	hasher, err := pdq.NewFrameHasher(v.Width, v.Height)
	if err != nil {
		cancel()
		_ = cmd.Wait()
		return Video{}, err
	}
	size := 3 * v.Width * v.Height
	workers := runtime.GOMAXPROCS(0)
	free := make(chan []byte, workers+1)
	for range workers + 1 {
		free <- make([]byte, size)
	}
	jobs := make(chan job)
	var (
		mu      sync.Mutex
		results []pdq.Result
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				r, _ := hasher.Hash(j.buf) // sizes agree by construction
				mu.Lock()
				for len(results) <= j.index {
					results = append(results, pdq.Result{})
				}
				results[j.index] = r
				mu.Unlock()
				free <- j.buf
			}
		})
	}
	var readErr error
	n := 0
	for {
		buf := <-free
		_, err := io.ReadFull(stdout, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				readErr = fmt.Errorf("%w: ffmpeg's output ended inside frame %d", ErrMalformed, n)
			} else {
				readErr = fmt.Errorf("%w: reading ffmpeg's output: %v", ErrMalformed, err)
			}
			break
		}
		jobs <- job{index: n, buf: buf}
		n++
		if opts.frameHook != nil {
			opts.frameHook(n, cmd.Process.Pid)
		}
	}
	close(jobs)
	wg.Wait()
	if readErr != nil {
		cancel()
	}
	waitErr := cmd.Wait()
	if timesDone != nil {
		<-timesDone // ffmpeg has exited: the pipe's write end is closed
	}
	switch {
	case parent.Err() != nil:
		return Video{}, context.Cause(parent)
	case ctx.Err() != nil && context.Cause(ctx) == ErrTimeout:
		return Video{}, fmt.Errorf("%w: ffmpeg ran longer than %v", ErrTimeout, limit)
	case waitErr != nil:
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return Video{}, fmt.Errorf("%w: ffmpeg was killed by signal %v after %d frames", ErrMalformed, ws.Signal(), n)
			}
			return Video{}, fmt.Errorf("%w: ffmpeg exited with status %d: %s", ErrMalformed, ee.ExitCode(), stderr.last())
		}
		return Video{}, fmt.Errorf("%w: ffmpeg: %v", ErrMalformed, waitErr)
	case readErr != nil:
		return Video{}, readErr
	case n == 0:
		return Video{}, fmt.Errorf("%w: ffmpeg decoded no frames", ErrMalformed)
	}
	if times != nil {
		if times.err != nil {
			return Video{}, fmt.Errorf("%w: ffmpeg's frame timestamps: %v", ErrMalformed, times.err)
		}
		if len(times.t) != n {
			return Video{}, fmt.Errorf("%w: ffmpeg piped %d frames and %d timestamps", ErrMalformed, n, len(times.t))
		}
	}
	v.Decoded = n
	for i, r := range results {
		f := Frame{PDQ: r.Hash, Quality: r.Quality, Frame: i}
		if times != nil {
			f.Timestamp = max(times.t[i], 0)
			f.Frame = int(math.Round(f.Timestamp * info.rate))
		} else {
			f.Timestamp = float64(f.Frame) / info.rate
		}
		if !opts.KeepDuplicates && len(v.Frames) > 0 && v.Frames[len(v.Frames)-1].PDQ == f.PDQ {
			continue
		}
		v.Frames = append(v.Frames, f)
	}
	if times != nil && len(times.t) > protocol.MaxVPDQFrames {
		// The duration was unknown or understated: widen the interval by
		// the same rule, from the last frame's time.
		if k := thinInterval(times.t[len(times.t)-1]); k > interval {
			v.Frames = thin(v.Frames, k)
		}
	}
	return v, nil
}

// timestamps collects the pts_time of the frames ffmpeg's metadata filter
// prints ("frame:N pts:P pts_time:T" lines, each followed by the frame's
// metadata), in order.
type timestamps struct {
	t   []float64
	err error // the first line that did not parse, or too many frames
}

func (ts *timestamps) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "frame:") || ts.err != nil {
			continue
		}
		_, after, ok := strings.Cut(line, "pts_time:")
		t, err := strconv.ParseFloat(strings.TrimSpace(after), 64)
		switch {
		case !ok || err != nil || math.IsNaN(t) || math.IsInf(t, 0):
			ts.err = fmt.Errorf("frame %d: %q", len(ts.t), line)
		case len(ts.t) >= maxTimestamps:
			ts.err = fmt.Errorf("more than %d sampled frames", maxTimestamps)
		default:
			ts.t = append(ts.t, t)
		}
	}
	if err := sc.Err(); err != nil && ts.err == nil {
		ts.err = err
	}
	_, _ = io.Copy(io.Discard, r) // never block ffmpeg
}

// tail keeps the last max bytes written to it: ffmpeg's stderr, for the
// error message, without holding an unbounded log.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// last returns the last non-empty line written, or "(no message)".
func (t *tail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return "(no message)"
}

// find returns the last line written that contains every one of parts.
func (t *tail) find(parts ...string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(string(t.buf), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(lines[i], p)
		}
		if ok {
			return strings.TrimSpace(lines[i]), true
		}
	}
	return "", false
}
