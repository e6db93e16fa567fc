package api

import (
	"net/http"
	"time"
)

// SetTimeouts shortens the deadlines of a handler NewServer made.
func SetTimeouts(h http.Handler, body, fileBody, writeStall time.Duration) {
	h.(*server).timeouts = timeouts{body: body, fileBody: fileBody, writeStall: writeStall}
}

// SetUploadStall shortens how long a video upload may send nothing.
func SetUploadStall(h http.Handler, d time.Duration) {
	h.(*server).timeouts.uploadStall = d
}
