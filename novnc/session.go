package novnc

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// session is one console connection. It is registered as soon as its token
// is consumed, before the dial, so that CloseInstance also stops a session
// that is still being set up.
type session struct {
	target Target

	mu         sync.Mutex
	closed     bool
	why        string
	ws         *websocket.Conn
	vnc        io.ReadWriteCloser
	done       chan struct{} // closed by close
	lastActive atomic.Int64  // unix nanoseconds of the last data either way
}

// open registers a session for t.
func (p *Proxy) open(t Target) *session {
	s := &session{target: t, done: make(chan struct{})}
	s.touch()
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.sessions[t.InstanceUUID]
	if set == nil {
		set = map[*session]struct{}{}
		p.sessions[t.InstanceUUID] = set
	}
	set[s] = struct{}{}
	return s
}

// forget closes s and drops it from the registry.
func (p *Proxy) forget(s *session) {
	s.close(websocket.CloseNormalClosure, "")
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.sessions[s.target.InstanceUUID]
	delete(set, s)
	if len(set) == 0 {
		delete(p.sessions, s.target.InstanceUUID)
	}
}

// CloseInstance closes every console session open on the instance, and any
// still being set up; call it when the instance stops or is deleted. It
// returns at once: the sessions' handlers finish on their own.
func (p *Proxy) CloseInstance(uuid string) {
	p.mu.Lock()
	var victims []*session
	for s := range p.sessions[uuid] {
		victims = append(victims, s)
	}
	p.mu.Unlock()
	for _, s := range victims {
		s.close(websocket.CloseGoingAway, "instance stopped or deleted")
	}
}

// sessionCount is the number of sessions open on the instance.
func (p *Proxy) sessionCount(uuid string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions[uuid])
}

// attachVNC hands the session its VNC stream; false means the session was
// closed meanwhile and c has been closed.
func (s *session) attachVNC(c io.ReadWriteCloser) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.vnc = c
	return true
}

// attachWS is attachVNC for the browser's websocket.
func (s *session) attachWS(ws *websocket.Conn) bool {
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.ws = ws
	}
	why := s.why
	s.mu.Unlock()
	if closed {
		sendClose(ws, websocket.CloseGoingAway, why)
		ws.Close()
		return false
	}
	return true
}

// close ends the session once: the browser gets a close frame with code
// and why (at most 123 bytes), then both connections are closed, which
// unblocks both pumps.
func (s *session) close(code int, why string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed, s.why = true, why
	ws, vnc := s.ws, s.vnc
	close(s.done)
	s.mu.Unlock()
	if ws != nil {
		sendClose(ws, code, why)
		ws.Close()
	}
	if vnc != nil {
		vnc.Close()
	}
}

// reason is why the session closed.
func (s *session) reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.why
}

func (s *session) touch() { s.lastActive.Store(time.Now().UnixNano()) }

func (s *session) idleFor() time.Duration {
	return time.Since(time.Unix(0, s.lastActive.Load()))
}

// sendClose writes a close frame, best effort: WriteControl may run beside
// the pump's writes.
func sendClose(ws *websocket.Conn, code int, why string) {
	msg := websocket.FormatCloseMessage(code, why)
	_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}

// writeDeadliner is the part of net.Conn a VNC stream may offer so a stuck
// host cannot hold a pump forever.
type writeDeadliner interface {
	SetWriteDeadline(time.Time) error
}

// pump copies browser messages to the VNC stream and VNC bytes to the
// browser as binary messages until the session closes, and keeps the
// socket alive with pings while watching the idle timeout. It returns the
// bytes copied each way.
func (p *Proxy) pump(s *session, ws *websocket.Conn, vnc io.ReadWriteCloser) (toVNC, toBrowser int64) {
	ws.SetReadLimit(maxClientMessage)
	_ = ws.SetReadDeadline(time.Now().Add(p.pongWait))
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(p.pongWait))
	})

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		toVNC = p.browserToVNC(s, ws, vnc)
	}()
	go func() {
		defer wg.Done()
		toBrowser = p.vncToBrowser(s, ws, vnc)
	}()

	tick := p.pingPeriod
	if p.idle > 0 && p.idle/4 < tick {
		tick = max(p.idle/4, 10*time.Millisecond)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastPing := time.Now()
loop:
	for {
		select {
		case <-s.done:
			break loop
		case now := <-t.C:
			if p.idle > 0 && s.idleFor() >= p.idle {
				s.close(websocket.CloseNormalClosure, "idle timeout")
				break loop
			}
			if now.Sub(lastPing) >= p.pingPeriod {
				lastPing = now
				if err := ws.WriteControl(websocket.PingMessage, nil, now.Add(p.writeWait)); err != nil {
					s.close(websocket.CloseGoingAway, "browser unreachable")
					break loop
				}
			}
		}
	}
	wg.Wait()
	return toVNC, toBrowser
}

func (p *Proxy) browserToVNC(s *session, ws *websocket.Conn, vnc io.ReadWriteCloser) int64 {
	var n int64
	for {
		kind, msg, err := ws.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				s.close(websocket.CloseMessageTooBig, "message too big")
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway):
				s.close(websocket.CloseNormalClosure, "browser closed")
			default:
				s.close(websocket.CloseGoingAway, "browser connection lost")
			}
			return n
		}
		if kind != websocket.BinaryMessage {
			s.close(websocket.CloseUnsupportedData, "binary messages only")
			return n
		}
		s.touch()
		_ = ws.SetReadDeadline(time.Now().Add(p.pongWait))
		if d, ok := vnc.(writeDeadliner); ok {
			_ = d.SetWriteDeadline(time.Now().Add(p.writeWait))
		}
		w, err := vnc.Write(msg)
		n += int64(w)
		if err != nil {
			s.close(websocket.CloseInternalServerErr, "console connection lost")
			return n
		}
	}
}

func (p *Proxy) vncToBrowser(s *session, ws *websocket.Conn, vnc io.ReadWriteCloser) int64 {
	var n int64
	buf := make([]byte, chunkSize)
	for {
		r, err := vnc.Read(buf)
		if r > 0 {
			s.touch()
			_ = ws.SetWriteDeadline(time.Now().Add(p.writeWait))
			if werr := ws.WriteMessage(websocket.BinaryMessage, buf[:r]); werr != nil {
				s.close(websocket.CloseGoingAway, "browser connection lost")
				return n
			}
			n += int64(r)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.close(websocket.CloseNormalClosure, "VNC server closed the connection")
			} else {
				s.close(websocket.CloseInternalServerErr, "console connection lost")
			}
			return n
		}
	}
}
