package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// prependConfig puts lines at the top of the node's config.toml (before
// any table), for keys such as max_video_upload and ffmpeg.
func prependConfig(t *testing.T, n *node, lines string) {
	t.Helper()
	p := filepath.Join(n.dir, "config.toml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append([]byte(lines+"\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// childProcesses lists the processes whose parent is pid, as
// "PID (COMMAND)", from /proc.
func childProcesses(t *testing.T, pid int) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("lists the node's child processes from /proc: runs on Linux only")
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("no /proc on Linux: %v", err)
	}
	var out []string
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // gone since ReadDir
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, d.Name()+" "+s[strings.IndexByte(s, '('):end+1])
		}
	}
	return out
}

// cliEnv is cli with env added to the test's environment.
func cliEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("staydown %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestVideoBadInputEndToEnd (issue 14, "Bad input"): bad videos through
// `match --file` (to a running node whose max_video_upload is 1 MiB) and
// `add --file`: a truncated MP4, an MP4 header alone, an empty file, a
// video over the limit, ffmpeg missing on the node (config pointing
// nowhere, then PATH without it) and on the CLI's machine. Each gives
// exit 2 and one line on stderr that names the problem and quotes the
// file; nothing is published, the node's log and heads are unchanged, and
// the node has no child process (ffmpeg, ffprobe) and no upload left in
// its temporary directory after each. A plain text file is not a video:
// match hashes it as any file (exit 1, no match) and add reads it as a
// list, refusing its line.
func TestVideoBadInputEndToEnd(t *testing.T) {
	t.Parallel()
	big := referenceVideo(t, "chair-19-sd-bar.mp4")      // 2.1 MB, over 1 MiB
	small := referenceVideo(t, "doorknob-hd-no-bar.mp4") // 0.5 MB, a good video
	mp4, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(work, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := write("truncated.mp4", mp4[:800_000])
	header := write("header-only.mp4", mp4[:64])
	empty := write("empty.mp4", nil)
	text := write("notes.mp4", []byte("this is plain text, not a video\n"))

	c := newCluster(t, "p=platform")
	p := c.nodes["p"]
	tmp := t.TempDir()
	p.env = []string{"TMPDIR=" + tmp}
	prependConfig(t, p, `max_video_upload = "1MiB"`)
	c.start(p)
	id := strings.TrimSpace(mustCLI(t, "add", "--dir", p.dir, "--type", "sha256", "--label", "graphic-violence", strings.Repeat("ab", 32)))
	before := c.status(p)

	// unchanged checks what must hold after every bad input.
	unchanged := func(what string) {
		t.Helper()
		if s := c.status(p); s.Entries != before.Entries || s.HeadsDigest != before.HeadsDigest {
			t.Errorf("%s: the node's log changed: %d entries (heads %s), had %d (%s)", what, s.Entries, s.HeadsDigest, before.Entries, before.HeadsDigest)
		}
		if kids := childProcesses(t, p.cmd.Process.Pid); len(kids) > 0 {
			t.Errorf("%s: the node has child processes left: %v", what, kids)
		}
		if left, err := os.ReadDir(tmp); err != nil || len(left) > 0 {
			t.Errorf("%s: left in the node's temporary directory: %v %v", what, left, err)
		}
	}
	// bad runs the command and wants exit 2, nothing on stdout, and one
	// line on stderr holding each of want.
	bad := func(env []string, want []string, args ...string) {
		t.Helper()
		out, errs, code := cliEnv(t, env, args...)
		what := strings.Join(args, " ")
		if code != 2 || out != "" || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q: want exit 2 and one line of error", what, code, out, errs)
		}
		for _, w := range want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr %q, want it to say %q", what, errs, w)
			}
		}
		t.Logf("%s → %s", filepath.Base(args[len(args)-1]), strings.TrimSpace(errs))
		unchanged(what)
	}
	q := strconv.Quote

	// match --file: the node hashes, and answers why it cannot.
	bad(nil, []string{q(truncated), "malformed video", "corrupt"}, "match", "--dir", p.dir, "--file", truncated)
	bad(nil, []string{q(header), "not a video"}, "match", "--dir", p.dir, "--file", header)
	bad(nil, []string{q(empty), "is empty"}, "match", "--dir", p.dir, "--file", empty)
	bad(nil, []string{q(big), "larger than 1048576 bytes", "max_video_upload"}, "match", "--dir", p.dir, "--file", big)
	// add --file: hashed here, refused before anything is sent.
	bad(nil, []string{q(truncated), "malformed video"}, "add", "--dir", p.dir, "--label", "graphic-violence", "--file", truncated)
	bad(nil, []string{q(header), "not a video"}, "add", "--dir", p.dir, "--label", "graphic-violence", "--file", header)
	bad(nil, []string{"empty.mp4", "lists no signal"}, "add", "--dir", p.dir, "--label", "graphic-violence", "--file", empty)
	bad(nil, []string{"notes.mp4:1", q("this is plain text, not a video")}, "add", "--dir", p.dir, "--label", "graphic-violence", "--file", text)
	bad([]string{"PATH=" + t.TempDir()}, []string{q(small), "apt-get install ffmpeg", "not on PATH"}, "add", "--dir", p.dir, "--label", "graphic-violence", "--file", small)

	// Not a video: matched as any file, by its sha256 and md5.
	out, errs, code := cli(t, "match", "--dir", p.dir, "--file", text)
	if code != 1 || !strings.Contains(out, "no pdq hash") || !strings.HasSuffix(out, "verdict: none\n") {
		t.Errorf("match --file of a text file: exit %d, stderr %q\n%s", code, errs, out)
	}
	unchanged("match --file notes.mp4")

	// ffmpeg missing on the node: config.toml pointing nowhere, then no
	// ffmpeg on the node's PATH. The good video is refused (503), saying
	// how to install it.
	c.stop(p)
	prependConfig(t, p, `ffmpeg = "`+filepath.Join(t.TempDir(), "no-ffmpeg-here")+`"`)
	c.start(p)
	bad(nil, []string{q(small), "cannot hash videos", "apt-get install ffmpeg"}, "match", "--dir", p.dir, "--file", small)
	c.stop(p)
	cfg := filepath.Join(p.dir, "config.toml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "\n") // the ffmpeg line prepended above
	if err := os.WriteFile(cfg, []byte(rest), 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = append(p.env, "PATH="+t.TempDir())
	c.start(p)
	bad(nil, []string{q(small), "cannot hash videos", "apt-get install ffmpeg"}, "match", "--dir", p.dir, "--file", small)

	// The entry published before all this is still there and matches.
	if r, code := c.match(p, "sha256", strings.Repeat("ab", 32)); !acted(code) || len(r.Attestations) != 1 || r.Attestations[0].ID != id {
		t.Errorf("the stored entry after the bad inputs: exit %d %+v", code, r)
	}
}
