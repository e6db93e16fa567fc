package match

import "errors"

// ErrHashFormat: a PDQ hash given as text is not 64 hex digits. The
// wrapping message says what was wrong and where. It is the only error this
// package returns; the indexes themselves cannot fail.
var ErrHashFormat = errors.New("bad PDQ hash")
