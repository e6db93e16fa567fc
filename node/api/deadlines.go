package api

import (
	"net/http"
	"time"
)

// Deadlines on a request's connection, so that a client sets the pace of
// its own request only (README, "Running a node for real"). The server
// (node.serveHTTP) adds the header and idle timeouts and the caps on
// connections (Listener).
const (
	// BodyTimeout bounds the reading of a request's body: a JSON body
	// is at most MaxBodySize.
	BodyTimeout = time.Minute
	// FileBodyTimeout bounds an upload to /v1/match/file: 32 MiB at
	// 1 Mbit/s takes four and a half minutes. A video may take longer,
	// at MinUploadRate, as long as no read stalls for UploadStall
	// (match_video.go).
	FileBodyTimeout = 10 * time.Minute
	// WriteStall bounds each write of a response: a client that stops
	// reading is cut off after it. A stream (/v1/events, /v1/export)
	// lasts as long as its client keeps reading; /v1/events sends a
	// keep-alive comment more often than this.
	WriteStall = 30 * time.Second
)

// timeouts are the deadlines a server applies; tests shorten them.
type timeouts struct {
	body, fileBody, writeStall time.Duration
	// uploadStall: a video upload (match_video.go) is cut off when no
	// byte arrives for this long.
	uploadStall time.Duration
}

var defaultTimeouts = timeouts{body: BodyTimeout, fileBody: FileBodyTimeout, writeStall: WriteStall, uploadStall: UploadStall}

// withDeadlines sets the read deadline of r's body and returns w with a
// write deadline renewed before each write and flush. Connections that do
// not support deadlines (a test's recorder) are left as they are.
func (t timeouts) withDeadlines(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	rc := http.NewResponseController(w)
	read := t.body
	if r.URL.Path == "/v1/match/file" {
		read = t.fileBody
	}
	if err := rc.SetReadDeadline(time.Now().Add(read)); err != nil {
		return w
	}
	return &stallWriter{ResponseWriter: w, rc: rc, stall: t.writeStall}
}

// stallWriter renews the connection's write deadline before each write,
// so that a write the client does not take within stall fails, and the
// handler writing it ends.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

func (w *stallWriter) renew() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.stall)) }

func (w *stallWriter) Write(b []byte) (int, error) {
	w.renew()
	return w.ResponseWriter.Write(b)
}

func (w *stallWriter) Flush() {
	w.renew()
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
