// Package smtpsink is an SMTP server for tests: it takes every message
// on a loopback port and keeps it, with the commands it was sent by. It
// speaks enough of RFC 5321 for net/smtp: EHLO, STARTTLS (when given a
// certificate), AUTH PLAIN (after STARTTLS only), MAIL, RCPT, DATA,
// RSET, NOOP, QUIT.
package smtpsink

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"time"
)

// Message is a message received.
type Message struct {
	From string
	To   []string
	Data string // headers and body, CRLF line ends, dot-stuffing undone
	// TLS: the message came over TLS; Auth is the PLAIN identity it
	// authenticated with ("" for none).
	TLS  bool
	Auth string
}

// Sink is a running server. Close stops it.
type Sink struct {
	ln  net.Listener
	tls *tls.Config // nil: no STARTTLS

	mu       sync.Mutex // guards msgs, commands
	msgs     []Message
	commands []string
	ring     chan struct{} // closed and replaced on each message
	wg       sync.WaitGroup
}

// Start listens on a loopback port. With cert, it offers STARTTLS.
func Start(cert *tls.Certificate) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{ln: ln, ring: make(chan struct{})}
	if cert != nil {
		s.tls = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	return s, nil
}

// Addr is host:port.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Close stops listening and waits for the sessions under way.
func (s *Sink) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// Messages are the messages received so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Commands are the command verbs received so far (EHLO, STARTTLS, AUTH,
// ...), in order.
func (s *Sink) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Wait waits until n messages were received or d passed, and returns
// the messages.
func (s *Sink) Wait(n int, d time.Duration) []Message {
	deadline := time.After(d)
	for {
		s.mu.Lock()
		got, ring := len(s.msgs), s.ring
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-ring:
		case <-deadline:
			return s.Messages()
		}
	}
}

func (s *Sink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(lines ...string) {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		w.Flush()
	}
	reply("220 smtpsink ready")
	var m Message
	secure := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		s.mu.Lock()
		s.commands = append(s.commands, verb)
		s.mu.Unlock()
		switch verb {
		case "EHLO", "HELO":
			lines := []string{"250-smtpsink"}
			if s.tls != nil && !secure {
				lines = append(lines, "250-STARTTLS")
			}
			if secure {
				lines = append(lines, "250-AUTH PLAIN")
			}
			reply(append(lines, "250 8BITMIME")...)
		case "STARTTLS":
			if s.tls == nil || secure {
				reply("502 no")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, secure = tc, true
			r, w = bufio.NewReader(c), bufio.NewWriter(c)
			m = Message{}
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !secure || !strings.EqualFold(mech, "PLAIN") {
				reply("504 not here")
				continue
			}
			b, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(b), "\x00")
			if err != nil || len(parts) != 3 {
				reply("501 bad")
				continue
			}
			m.Auth = parts[1]
			reply("235 ok")
		case "MAIL":
			m.From = addr(arg)
			reply("250 ok")
		case "RCPT":
			m.To = append(m.To, addr(arg))
			reply("250 ok")
		case "DATA":
			reply("354 end with .")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			m.Data, m.TLS = b.String(), secure
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			close(s.ring)
			s.ring = make(chan struct{})
			s.mu.Unlock()
			m = Message{Auth: m.Auth}
			reply("250 queued")
		case "RSET":
			m = Message{Auth: m.Auth}
			reply("250 ok")
		case "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("500 what")
		}
	}
}

// addr is the address of "FROM:<a@b> ..." or "TO:<a@b>".
func addr(arg string) string {
	_, a, _ := strings.Cut(arg, "<")
	a, _, _ = strings.Cut(a, ">")
	return a
}
