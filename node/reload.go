package node

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/tokens"
)

// metricsHandler serves /metrics: open, or with metrics_token only to a
// token of scope read (or one that includes it), answered like the API's
// refusals.
func (n *Node) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{})
	if !n.cfg.MetricsToken {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := n.keys.Authorize(r.Header.Get("Authorization"), tokens.Read, "GET /metrics"); err != nil {
			code := http.StatusForbidden
			if errors.Is(err, kind.ErrUnauthorized) {
				code = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", `Bearer realm="staydown"`)
			}
			http.Error(w, "authorization: "+err.Error(), code)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Reload reads again what the node reads while it runs: the API's TLS
// certificate and key (a pair that fails to load is logged and the old
// one kept) and the API's tokens file. Run calls it on SIGHUP.
func (n *Node) Reload() error {
	var errs []error
	if n.certs != nil {
		errs = append(errs, n.certs.Reload())
	}
	if n.keys != nil {
		if err := n.keys.Reload(); err != nil {
			n.log.Error("api tokens: only api.token is accepted until the file is fixed", "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
