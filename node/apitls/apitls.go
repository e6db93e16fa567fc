// Package apitls is the TLS of the node's HTTP API, both ends: the node
// serves the certificate and key its config names (api_tls_cert,
// api_tls_key) and reads them again on SIGHUP ([Certs]); the CLI, which
// reads the same config, trusts exactly that certificate ([Client]).
package apitls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync/atomic"
)

// Certs is the API's certificate, replaceable while the node serves.
type Certs struct {
	cert, key string
	log       *slog.Logger
	cur       atomic.Pointer[tls.Certificate]
}

// Load reads the certificate and key files (PEM) for the API; an error
// says which file is wrong and how.
func Load(certFile, keyFile string, log *slog.Logger) (*Certs, error) {
	c := &Certs{cert: certFile, key: keyFile, log: log}
	pair, err := load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	c.cur.Store(pair)
	return c, nil
}

func load(certFile, keyFile string) (*tls.Certificate, error) {
	fi, err := os.Stat(keyFile)
	if err != nil {
		return nil, fmt.Errorf("api_tls_key: %w", err)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("api_tls_key: %s: permissions %04o are too open: a key must be readable by its owner only; run: chmod 600 %s", keyFile, perm, keyFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("api_tls_cert %s, api_tls_key %s: %w", certFile, keyFile, err)
	}
	return &pair, nil
}

// Reload reads the files again. If they do not make a valid pair the
// error is logged and returned, and the certificate served stays the one
// before: a botched renewal must not take the API down.
func (c *Certs) Reload() error {
	pair, err := load(c.cert, c.key)
	if err != nil {
		c.log.Error("api: TLS certificate not reloaded; still serving the previous one", "err", err)
		return err
	}
	c.cur.Store(pair)
	c.log.Info("api: TLS certificate reloaded", "cert", c.cert)
	return nil
}

// Config is the server's TLS config: the current certificate for every
// handshake.
func (c *Certs) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil },
	}
}

// Client is the TLS config of a client of the node whose api_tls_cert is
// certFile: it accepts the certificate that is first in the file and no
// other. The CLI reads the file from the node's own directory, so it pins
// that certificate instead of checking names and issuers: it works when
// the CLI dials 127.0.0.1 and the certificate names the node's public
// name, and with a self-signed certificate.
func Client(certFile string) (*tls.Config, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("api_tls_cert: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("api_tls_cert: %s: no PEM CERTIFICATE block", certFile)
	}
	want, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("api_tls_cert: %s: %w", certFile, err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The standard checks are replaced by the pin below, which is
		// stricter: one certificate, byte for byte.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want.Raw) {
				return &OtherCertificateError{File: certFile}
			}
			return nil
		},
	}, nil
}

// OtherCertificateError is a node that presented a certificate other than
// the one in its api_tls_cert: someone else listens on its address, or
// the file was replaced and the node not told (SIGHUP).
type OtherCertificateError struct{ File string }

func (e *OtherCertificateError) Error() string {
	return fmt.Sprintf("the node presented a certificate other than the one in %s (was the file replaced without a SIGHUP to the node, or is another server listening there?)", e.File)
}
