// Package vpdq computes vPDQ video hashes: the PDQ hash (package pdq) of
// sampled frames of a video, each with its frame number, quality and
// timestamp, as Meta's vPDQ reference (facebook/ThreatExchange, folder vpdq)
// and python-threatexchange's `vpdq` signal type do.
//
// # Decoding
//
// Frames are decoded by ffmpeg run as a subprocess (Debian's ffmpeg
// package: `apt-get install ffmpeg`), which pipes raw RGB frames to this
// process; no cgo, so the staydown binary stays static. The video stream's
// dimensions, rotation, frame rate and duration are read first: from the
// moov box by this package (mp4.go) for a plain MP4 or MOV file (one H.264
// or H.265 video track, a constant frame rate, an identity or quarter-turn
// display matrix, not fragmented), the values libavformat derives from the
// same fields; for anything else by ffprobe (same package). A pure-Go decoder was not chosen: none handles H.264 in MP4,
// WebM (VP8/VP9/AV1) and MOV correctly.
//
// ffmpeg is found on PATH or at Options.FFmpeg; ffprobe next to it (or at
// Options.FFprobe, or on PATH). When either is missing Hash returns
// ErrNoFFmpeg naming the install command.
//
// # What is hashed
//
// Each decoded frame is converted to packed RGB with swscale's area
// filter (`scale=...:flags=area`), as the reference does with
// sws_scale(SWS_AREA) to AV_PIX_FMT_RGB24, at the video's display size
// (Options.Size > 0 instead scales to Size x Size, as the reference's
// -128x128 hashes), and hashed at full size with pdq.FrameHasher.
//
// Rotation metadata (an MP4 display matrix) is applied as ffmpeg does by
// default (autorotate), so a phone video filmed upright is hashed upright;
// the width and height reported are the displayed ones. The reference's
// C++ hasher reads decoded frames through libavcodec without the autorotate
// filter, so it hashes the stored (unrotated) pixels; a rotated video's
// hashes therefore differ from the reference's, and match the upright copy
// of the same video instead, which is what a platform needs.
//
// By default one frame a second is hashed, python-threatexchange's default,
// chosen by timestamp: the first frame whose presentation time (from the
// video's start, as ffmpeg shifts it) is at or after each whole second, so
// a variable-frame-rate video is sampled once a second of its own time,
// and a constant-rate video at frame ceil(k*rate) for second k: at an
// integer rate the frames the reference's `-r 1` picks (every int(rate)th
// frame, which drifts at 29.97 fps). A `select` filter inside
// ffmpeg drops the other frames before conversion, scaling and hashing,
// and ffmpeg's metadata filter writes each kept frame's pts_time to a
// pipe (descriptor 3) beside the frames: that is the frame's Timestamp,
// and its Frame is the timestamp times the frame rate, rounded.
// Options.EveryFrame hashes every frame, the reference's setting; there
// frame numbers count decoded frames from 0 in presentation order, and a
// frame's timestamp is its number divided by the frame rate, in seconds
// (the reference's text form prints it with three decimals).
//
// A video longer than 1,500 s (protocol.MaxVPDQFrames) is sampled every
// ceil(duration/1500) seconds instead, on the same grid (the first frame at
// or after each multiple of the interval), the stream's declared duration
// deciding (as ffprobe reports it; SPEC.md 7.6), so that its signal carries at most 1,500 frames spread over
// the whole video. When the duration is unknown or understated and more than
// 1,500 frames come out, they are thinned afterwards by the same rule, the
// interval taken from the last frame's timestamp (floor(last/1500)+1).
//
// A frame whose hash is identical to the previous kept frame's is dropped
// (the reference's dedupe): a still scene of ten minutes costs one frame.
//
// # Bounds
//
// A video whose declared frame exceeds MaxDimension on a side or MaxPixels
// in all is refused from the header's (or ffprobe's) answer, before
// anything is decoded.
// Frames are read into buffers of exactly one frame each, a fixed number of
// them. ffmpeg's time is bounded by a timeout proportional to the declared
// duration plus a minute, never more than Options.Timeout (default
// DefaultTimeout). ffmpeg runs with -xerror, so a corrupt or truncated
// stream is an error (ErrMalformed, with ffmpeg's last message), not a
// silently shorter hash. On every return the subprocess has exited and been
// reaped.
//
// # Input that is not a file
//
// Hash takes an io.Reader and copies it into a temporary file (at most
// Options.MaxBytes, default DefaultMaxBytes) before hashing it: ffprobe and
// ffmpeg both read the input, and MP4 and MOV files written with the index
// (the moov box) at the end, the usual layout of phone and camera files,
// cannot be decoded from a pipe at all. The upload is held on disk, never
// whole in memory. HashFile hashes a file in place.
//
// # Speed
//
// At one frame a second hashing costs nothing next to decoding: ffmpeg
// still decodes every frame (an H.264 P or B frame needs the frames it
// refers to, back to the last keyframe), and so does the reference's
// `-r 1`. Each process start costs about 0.17 s of CPU here (Debian's
// ffmpeg loads some 200 shared libraries, and the dynamic loader's symbol
// lookups and relocations are most of it), a sixth of hashing a 20 s
// sample video: so a plain MP4 or MOV file is described from its header
// by this package (mp4.go) and only ffmpeg is started; other files still
// start ffprobe first. That made the 14 sample videos 1.33x cheaper
// (README, Benchmarks) and brought them level with the reference (1.09x
// its throughput), not 2x: the reference starts one process too, and both
// decode every frame. On 10 minutes of 720p, where the process start is
// nothing, ours costs about a full decode and is 1.3x the reference.
//
// 2x at one frame a second needs decoding less than half the frames,
// without moving which frame is sampled. The floor for that is decoding
// every reference frame up to the last sample of each keyframe interval,
// plus the sampled frames; `-skip_frame noref` (every reference frame, no
// other) measures that floor on the sample videos at 1.2x less CPU than a
// full decode as whole processes (11.4 against 13.8 s; 1.3x without the
// process starts), so even a demuxer that kept exactly those packets would
// reach about 1.4x the reference there, not 2x. ffmpeg 5.1's command line cannot keep them:
// its packet filters (noise's drop expression, filter_units) see neither
// a packet's nal_ref_idc nor whether it is a sample, and the decoder's
// skip_frame applies to all frames alike.
//
// Decoding less was tried. With `-skip_frame noref` (frames no other
// frame refers to are not decoded; 1.5x less decoding on the sample
// videos, measured with ffmpeg -f null) the first decoded frame at or
// after a whole second is up to two frames late, by an amount that depends on each encoding's
// frame types: one-a-second hashes of re-encodings of one take matched
// each other less (on the reference videos one pair fell from 87% to 74%,
// under the 80% threshold), which defeats the hash's purpose, so it is not
// used. `-skip_frame nokey` (keyframes only, 4.7x less decoding) would
// sample wherever each encoder put its keyframes, often 2 to 10 s apart:
// worse still. What is left: demuxing MP4 in this package and piping
// ffmpeg only the packets that are reference frames or samples (an H.264
// elementary stream, the timestamps kept here), at most the 1.3x above;
// and skipping the frames after the last sample of each keyframe interval,
// which saves little with the usual 2 to 10 s intervals.
package vpdq
