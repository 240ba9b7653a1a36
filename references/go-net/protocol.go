package main

// The request/response protocols, as the classic Go server writes them: a bufio.Reader
// and bufio.Writer per connection, io.ReadFull for frames, net/http's ReadRequest for
// HTTP/1.1. Responses are flushed when no further request is already buffered, so
// pipelined requests share one write. The wire format is c1m-server's (README,
// "Protocols").

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// countedConn counts reads and writes as the echo handler does.
type countedConn struct {
	net.Conn
	st *stats
}

func (c countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.st.recvs.Add(1)
		c.st.bytesIn.Add(uint64(n))
	}
	return n, err
}

func (c countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.st.sends.Add(1)
	c.st.bytesOut.Add(uint64(n))
	return n, err
}

// deadlines arms the idle timeout before a read and a write, like the echo handler.
func (s *server) armIdle(c net.Conn) error {
	if idle := s.cfg.idleTimeout; idle > 0 {
		return c.SetDeadline(time.Now().Add(idle))
	}
	return nil
}

// ended maps a read or write error to why the connection ends.
func (s *server) ended(err error) endReason {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return endPeer
	}
	return s.classify(err)
}

// frameReply is the whole response frame when --reply-size is given: N bytes of i % 251.
func frameReply(n int) []byte {
	f := make([]byte, 4+n)
	binary.BigEndian.PutUint32(f, uint32(n))
	for i := 0; i < n; i++ {
		f[4+i] = byte(i % 251)
	}
	return f
}

// serveFrame answers each [u32 BE length][payload] request with one response frame.
func serveFrame(s *server, c net.Conn, buf []byte) endReason {
	cc := countedConn{c, s.stats}
	r := bufio.NewReaderSize(cc, len(buf))
	w := bufio.NewWriterSize(cc, len(buf))
	var reply []byte
	if s.cfg.replySize >= 0 {
		reply = frameReply(s.cfg.replySize)
	}
	var header [4]byte
	for {
		if s.isStopping() {
			return endShutdown
		}
		if err := s.armIdle(c); err != nil {
			return endError
		}
		if _, err := io.ReadFull(r, header[:]); err != nil {
			return s.ended(err)
		}
		n := binary.BigEndian.Uint32(header[:])
		if n > uint32(s.cfg.maxFrame) {
			w.Flush()
			s.stats.protoErrors.Add(1)
			return endError
		}
		var payload []byte
		if int(n) <= len(buf) {
			payload = buf[:n]
		} else {
			payload = make([]byte, n) // at most --max-frame
		}
		if _, err := io.ReadFull(r, payload); err != nil {
			return s.ended(err)
		}
		if reply != nil {
			w.Write(reply)
		} else {
			w.Write(header[:])
			w.Write(payload)
		}
		s.stats.requests.Add(1)
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return s.classify(err)
			}
		}
	}
}

// headLimit stops reading after `left` bytes: net/http's own guard against endless
// request heads, set before each head and lifted for the body.
type headLimit struct {
	r    io.Reader
	left int64
}

func (l *headLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

var errHeadTooLarge = errors.New("request head too large")

const noLimit = 1 << 62

// httpResponses are rendered once: 200 with the body, and the error answers.
type httpResponses struct{ ok, okClose, head, headClose []byte }

func renderHTTP(status string, bodyLen int, close bool) []byte {
	conn := ""
	if close {
		conn = "Connection: close\r\n"
	}
	return []byte(fmt.Sprintf("HTTP/1.1 %s\r\nServer: c1m\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n",
		status, bodyLen, conn))
}

func newHTTPResponses(bodySize int) httpResponses {
	body := make([]byte, bodySize)
	for i := range body {
		body[i] = "0123456789abcdef"[i%16]
	}
	return httpResponses{
		ok:        append(renderHTTP("200 OK", bodySize, false), body...),
		okClose:   append(renderHTTP("200 OK", bodySize, true), body...),
		head:      renderHTTP("200 OK", bodySize, false),
		headClose: renderHTTP("200 OK", bodySize, true),
	}
}

// serveHTTP answers every HTTP/1.1 request with 200 and the fixed body, in order.
func serveHTTP(s *server, c net.Conn, buf []byte) endReason {
	limit := &headLimit{r: countedConn{c, s.stats}, left: noLimit}
	r := bufio.NewReaderSize(limit, len(buf))
	w := bufio.NewWriterSize(countedConn{c, s.stats}, len(buf))
	refuse := func(status string) endReason {
		w.Write(renderHTTP(status, 0, true))
		w.Flush()
		s.stats.protoErrors.Add(1)
		return endError
	}
	for {
		if s.isStopping() {
			return endShutdown
		}
		if err := s.armIdle(c); err != nil {
			return endError
		}
		limit.left = int64(s.cfg.maxHeader)
		req, err := http.ReadRequest(r)
		limit.left = noLimit
		switch {
		case errors.Is(err, errHeadTooLarge):
			return refuse("431 Request Header Fields Too Large")
		case errors.Is(err, io.EOF):
			return endPeer
		case err != nil && (errors.Is(err, io.ErrUnexpectedEOF) || s.isStopping()):
			return s.ended(err)
		case err != nil:
			var ne net.Error
			if errors.As(err, &ne) {
				return s.classify(err)
			}
			return refuse("400 Bad Request")
		}
		if len(req.TransferEncoding) > 0 {
			return refuse("501 Not Implemented")
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return s.ended(err)
		}
		resp := s.http.ok
		switch {
		case req.Method == "HEAD" && req.Close:
			resp = s.http.headClose
		case req.Method == "HEAD":
			resp = s.http.head
		case req.Close:
			resp = s.http.okClose
		}
		w.Write(resp)
		s.stats.requests.Add(1)
		if req.Close || r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return s.classify(err)
			}
		}
		if req.Close {
			return endPeer
		}
	}
}
