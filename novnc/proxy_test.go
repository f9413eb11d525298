package novnc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// fakeTokens keeps console tokens as compute does: single-use, expiring,
// bound to one instance on one host.
type fakeTokens struct {
	mu     sync.Mutex
	tokens map[string]*fakeToken
	calls  int
	issued []string
}

type fakeToken struct {
	target  Target
	expires time.Time
	used    bool
}

func (f *fakeTokens) issue(t Target, ttl time.Duration) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "tok" + hex.EncodeToString(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[tok] = &fakeToken{target: t, expires: time.Now().Add(ttl)}
	f.issued = append(f.issued, tok)
	return tok
}

func (f *fakeTokens) ConsumeConsoleToken(_ context.Context, token string) (*Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	t, ok := f.tokens[token]
	switch {
	case !ok:
		return nil, fault.Unauthorizedf("console token not found")
	case t.used:
		return nil, fault.Unauthorizedf("console token already used")
	case time.Now().After(t.expires):
		return nil, fault.Unauthorizedf("console token expired")
	}
	t.used = true
	target := t.target
	return &target, nil
}

func (f *fakeTokens) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeDialer reaches the in-test VNC server for every known host; hold, when
// set, is called before dialing so a test can stall the dial.
type fakeDialer struct {
	hosts map[string]string
	dials atomic.Int32
	conns chan net.Conn
	hold  func()
}

func (d *fakeDialer) DialVNC(ctx context.Context, hostID, instanceUUID string) (io.ReadWriteCloser, error) {
	d.dials.Add(1)
	if d.hold != nil {
		d.hold()
	}
	addr, ok := d.hosts[hostID]
	if !ok {
		return nil, fmt.Errorf("no route to host %q", hostID)
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err == nil && d.conns != nil {
		d.conns <- c
	}
	return c, err
}

// syncBuffer is a log sink that the handlers' goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type rig struct {
	t      *testing.T
	proxy  *Proxy
	srv    *httptest.Server
	tokens *fakeTokens
	dialer *fakeDialer
	vnc    *vncServer
	logs   *syncBuffer
}

var (
	inst1 = Target{InstanceUUID: "11111111-1111-4111-8111-111111111111", HostID: "host-a"}
	inst2 = Target{InstanceUUID: "22222222-2222-4222-8222-222222222222", HostID: "host-a"}
)

func newRig(t *testing.T, configure func(*Config)) *rig {
	t.Helper()
	r := &rig{
		t:      t,
		tokens: &fakeTokens{tokens: map[string]*fakeToken{}},
		vnc:    startVNC(t),
		logs:   &syncBuffer{},
	}
	r.dialer = &fakeDialer{hosts: map[string]string{"host-a": r.vnc.addr()}}
	cfg := Config{
		Tokens: r.tokens,
		Dialer: r.dialer,
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if configure != nil {
		configure(&cfg)
	}
	r.proxy = New(cfg)
	mux := http.NewServeMux()
	mux.Handle("/console/", r.proxy.Handler())
	r.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		r.srv.Close()
		// Every session ends once its sockets are gone.
		r.eventually("all sessions closed", func() bool {
			r.proxy.mu.Lock()
			defer r.proxy.mu.Unlock()
			return len(r.proxy.sessions) == 0
		})
		logs := r.logs.String()
		for _, tok := range r.tokens.issued {
			if strings.Contains(logs, tok) {
				t.Errorf("a console token reached the log:\n%s", logs)
			}
		}
	})
	return r
}

func (r *rig) origin() string { return r.srv.URL }

func (r *rig) wsURL(token string) string {
	return "ws" + strings.TrimPrefix(r.srv.URL, "http") + "/console/websockify?token=" + url.QueryEscape(token)
}

// dial opens the console socket as a browser page on origin would.
func (r *rig) dial(token, origin string, protocols ...string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(r.wsURL(token), h)
	if err == nil {
		r.t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

func (r *rig) mustDial(token string) *websocket.Conn {
	r.t.Helper()
	ws, resp, err := r.dial(token, r.origin(), "binary")
	if err != nil {
		r.t.Fatalf("dial: %v (%s)", err, status(resp))
	}
	return ws
}

func (r *rig) eventually(what string, ok func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// rfbClient speaks RFB over the console socket; the proxy may split or join
// the stream into messages as it likes, so reads go through a buffer.
type rfbClient struct {
	t   *testing.T
	ws  *websocket.Conn
	buf []byte
}

func (c *rfbClient) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		kind, msg, err := c.ws.ReadMessage()
		if err != nil {
			return 0, err
		}
		if kind != websocket.BinaryMessage {
			return 0, fmt.Errorf("message type %d, want binary", kind)
		}
		c.buf = msg
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

func (c *rfbClient) read(n int) []byte {
	c.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		c.t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func (c *rfbClient) send(b ...byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// handshake runs the client side of RFB 3.8 up to ServerInit and checks
// what the test server announced.
func (c *rfbClient) handshake() {
	c.t.Helper()
	if got := string(c.read(12)); got != "RFB 003.008\n" {
		c.t.Fatalf("version %q, want RFB 003.008", got)
	}
	c.send([]byte("RFB 003.008\n")...)
	if got := c.read(2); !bytes.Equal(got, []byte{1, 1}) {
		c.t.Fatalf("security types %v, want [1 1]", got)
	}
	c.send(1)
	if got := c.read(4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		c.t.Fatalf("security result %v, want OK", got)
	}
	c.send(1) // ClientInit, shared
	init := c.read(24)
	w, h := binary.BigEndian.Uint16(init[0:]), binary.BigEndian.Uint16(init[2:])
	if w != fbWidth || h != fbHeight || init[4] != 32 {
		c.t.Fatalf("ServerInit %dx%d %d bpp, want %dx%d 32 bpp", w, h, init[4], fbWidth, fbHeight)
	}
	name := c.read(int(binary.BigEndian.Uint32(init[20:])))
	if string(name) != "nimbus-test-vm" {
		c.t.Fatalf("desktop name %q", name)
	}
}

// refresh asks for a full update and reads it back: a round trip through
// the proxy in both directions.
func (c *rfbClient) refresh() {
	c.t.Helper()
	req := []byte{3, 0, 0, 0, 0, 0}
	req = binary.BigEndian.AppendUint16(req, fbWidth)
	req = binary.BigEndian.AppendUint16(req, fbHeight)
	c.send(req...)
	hdr := c.read(16)
	if hdr[0] != 0 || binary.BigEndian.Uint16(hdr[2:]) != 1 {
		c.t.Fatalf("update header %v", hdr)
	}
	c.read(fbWidth * fbHeight * 4)
}

func connectRFB(t *testing.T, ws *websocket.Conn) *rfbClient {
	c := &rfbClient{t: t, ws: ws}
	c.handshake()
	return c
}

// closeCode waits for the server to end the socket and returns its close
// frame.
func closeCode(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("socket ended with %v, want a close frame", err)
		}
		return ce
	}
}

func TestConsoleSession(t *testing.T) {
	r := newRig(t, nil)
	tok := r.tokens.issue(inst1, time.Minute)

	ws, resp, err := r.dial(tok, r.origin(), "binary")
	if err != nil {
		t.Fatalf("dial: %v (%s)", err, status(resp))
	}
	if ws.Subprotocol() != "binary" {
		t.Errorf("subprotocol %q, want binary", ws.Subprotocol())
	}
	c := connectRFB(t, ws)
	c.refresh()

	// A key press reaches the VNC server.
	c.send(4, 1, 0, 0, 0, 0, 0xff, 0x0d)
	select {
	case k := <-r.vnc.keys:
		if k != 0xff0d {
			t.Errorf("key %#x, want 0xff0d", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the key event never reached the VNC server")
	}
	if n := r.proxy.sessionCount(inst1.InstanceUUID); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}

	// The browser leaving closes the VNC connection.
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	ws.Close()
	select {
	case <-r.vnc.disconnects:
	case <-time.After(5 * time.Second):
		t.Fatal("VNC connection still open after the browser left")
	}
	r.eventually("session forgotten", func() bool { return r.proxy.sessionCount(inst1.InstanceUUID) == 0 })
	if !strings.Contains(r.logs.String(), TokenID(tok)) {
		t.Errorf("the log does not name the session by its token ID:\n%s", r.logs)
	}
}

// noVNC 1.7 asks for no subprotocol unless told to; that is accepted too.
func TestConsoleWithoutSubprotocol(t *testing.T) {
	r := newRig(t, nil)
	ws, resp, err := r.dial(r.tokens.issue(inst1, time.Minute), r.origin())
	if err != nil {
		t.Fatalf("dial: %v (%s)", err, status(resp))
	}
	connectRFB(t, ws).refresh()
}

func TestWebsockifyRefusals(t *testing.T) {
	r := newRig(t, nil)
	used := r.tokens.issue(inst1, time.Minute)
	if _, err := r.tokens.ConsumeConsoleToken(context.Background(), used); err != nil {
		t.Fatal(err)
	}
	expired := r.tokens.issue(inst1, -time.Second)
	host := strings.TrimPrefix(r.srv.URL, "http://")
	_, port, _ := net.SplitHostPort(host)
	otherPort := "http://127.0.0.1:1" + port

	tests := []struct {
		name      string
		token     string // "" issues a fresh valid token
		origin    string // "-" sends none
		protocols []string
		plainGET  bool
		status    int
		consumes  bool // whether the token consumer may be asked
	}{
		{name: "foreign origin", origin: "http://evil.example", status: 403},
		{name: "missing origin", origin: "-", status: 403},
		{name: "null origin", origin: "null", status: 403},
		{name: "same host other port", origin: otherPort, status: 403},
		{name: "origin with a path", origin: r.srv.URL + "/x", status: 403},
		{name: "origin with userinfo", origin: "http://a@" + host, status: 403},
		{name: "not http", origin: "file://" + host, status: 403},
		{name: "base64 subprotocol only", protocols: []string{"base64"}, status: 400},
		{name: "plain GET", plainGET: true, status: 400},
		{name: "unknown token", token: "tok-never-issued", status: 401, consumes: true},
		{name: "oversized token", token: strings.Repeat("x", maxTokenLen+1), status: 401},
		{name: "reused token", token: used, status: 401, consumes: true},
		{name: "expired token", token: expired, status: 401, consumes: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token
			if tok == "" {
				tok = r.tokens.issue(inst1, time.Minute)
			}
			origin := tt.origin
			switch origin {
			case "":
				origin = r.origin()
			case "-":
				origin = ""
			}
			calls, dials := r.tokens.callCount(), r.dialer.dials.Load()

			var resp *http.Response
			if tt.plainGET {
				req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/console/websockify?token="+tok, nil)
				req.Header.Set("Origin", origin)
				var err error
				if resp, err = http.DefaultClient.Do(req); err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
			} else {
				ws, got, err := r.dial(tok, origin, tt.protocols...)
				if err == nil {
					ws.Close()
					t.Fatal("the socket was upgraded")
				}
				if !errors.Is(err, websocket.ErrBadHandshake) {
					t.Fatalf("dial: %v, want a refused handshake", err)
				}
				resp = got
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status %s, want %d", status(resp), tt.status)
			}
			if resp.Header.Get("Upgrade") != "" {
				t.Error("a refusal carries an Upgrade header")
			}
			if consumed := r.tokens.callCount() > calls; consumed != tt.consumes {
				t.Errorf("token consumer asked: %v, want %v", consumed, tt.consumes)
			}
			if r.dialer.dials.Load() != dials {
				t.Error("a refused request dialed the VNC server")
			}
		})
	}
}

func TestAllowedOrigins(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.AllowedOrigins = []string{"https://Cloud.Example.com:443/dashboard/"}
	})
	for _, origin := range []string{r.origin(), "http://cloud.example.com", "https://cloud.example.com:8443"} {
		_, resp, err := r.dial(r.tokens.issue(inst1, time.Minute), origin, "binary")
		if err == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %s: %v (%s), want 403", origin, err, status(resp))
		}
	}
	ws, resp, err := r.dial(r.tokens.issue(inst1, time.Minute), "https://cloud.example.com", "binary")
	if err != nil {
		t.Fatalf("listed origin: %v (%s)", err, status(resp))
	}
	connectRFB(t, ws)
}

func TestOriginPolicy(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	tests := []struct {
		allowed []string
		host    string
		origin  []string
		want    bool
	}{
		{nil, "nimbus.test:8080", []string{"http://nimbus.test:8080"}, true},
		{nil, "Nimbus.Test", []string{"https://nimbus.test:443"}, true},
		{nil, "nimbus.test:443", []string{"https://nimbus.test"}, true},
		{nil, "[::1]:8080", []string{"http://[::1]:8080"}, true},
		{nil, "nimbus.test", []string{"http://nimbus.test.evil.example"}, false},
		{nil, "nimbus.test", []string{"http://nimbus.test", "http://nimbus.test"}, false},
		{nil, "nimbus.test", nil, false},
		{[]string{"https://cloud.example.com"}, "10.0.0.5", []string{"https://cloud.example.com"}, true},
		{[]string{"https://cloud.example.com"}, "cloud.example.com", []string{"http://cloud.example.com"}, false},
		// A list that is all typos refuses everyone rather than falling
		// back to same-host.
		{[]string{"cloud.example.com"}, "cloud.example.com", []string{"https://cloud.example.com"}, false},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "/console/websockify", nil)
		req.Host = tt.host
		for _, o := range tt.origin {
			req.Header.Add("Origin", o)
		}
		if got := newOriginPolicy(tt.allowed, discard).allowed(req); got != tt.want {
			t.Errorf("allowed %v, host %s, origin %v: %v, want %v", tt.allowed, tt.host, tt.origin, got, tt.want)
		}
	}
}

func TestCloseInstance(t *testing.T) {
	r := newRig(t, nil)
	a := connectRFB(t, r.mustDial(r.tokens.issue(inst1, time.Minute)))
	b := connectRFB(t, r.mustDial(r.tokens.issue(inst1, time.Minute)))
	other := connectRFB(t, r.mustDial(r.tokens.issue(inst2, time.Minute)))
	r.eventually("three sessions", func() bool {
		return r.proxy.sessionCount(inst1.InstanceUUID) == 2 && r.proxy.sessionCount(inst2.InstanceUUID) == 1
	})

	r.proxy.CloseInstance(inst1.InstanceUUID)
	for _, c := range []*rfbClient{a, b} {
		if ce := closeCode(t, c.ws); ce.Code != websocket.CloseGoingAway {
			t.Errorf("close %d %q, want %d", ce.Code, ce.Text, websocket.CloseGoingAway)
		}
	}
	for range 2 {
		select {
		case <-r.vnc.disconnects:
		case <-time.After(5 * time.Second):
			t.Fatal("a VNC connection of the closed instance is still open")
		}
	}
	r.eventually("instance sessions forgotten", func() bool { return r.proxy.sessionCount(inst1.InstanceUUID) == 0 })
	other.refresh() // the other instance's console is untouched
}

// A session whose instance is closed while the proxy is still dialing never
// becomes a socket.
func TestCloseInstanceDuringDial(t *testing.T) {
	dialing, release := make(chan struct{}), make(chan struct{})
	r := newRig(t, nil)
	r.dialer.hold = func() { close(dialing); <-release }
	r.dialer.conns = make(chan net.Conn, 1)
	tok := r.tokens.issue(inst1, time.Minute)

	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		_, resp, err := r.dial(tok, r.origin(), "binary")
		done <- result{resp, err}
	}()
	<-dialing
	r.proxy.CloseInstance(inst1.InstanceUUID)
	close(release)
	res := <-done
	if res.err == nil || res.resp.StatusCode != http.StatusGone {
		t.Fatalf("dial: %v (%s), want 410", res.err, status(res.resp))
	}
	c := <-r.dialer.conns
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 64)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the dialed VNC connection was not closed: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	r := newRig(t, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := connectRFB(t, r.mustDial(r.tokens.issue(inst1, time.Minute)))
	start := time.Now()
	ce := closeCode(t, c.ws)
	if ce.Code != websocket.CloseNormalClosure || ce.Text != "idle timeout" {
		t.Errorf("close %d %q, want 1000 idle timeout", ce.Code, ce.Text)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", time.Since(start))
	}
}

func TestSessionEnds(t *testing.T) {
	tests := []struct {
		name string
		send func(ws *websocket.Conn) error
		code int
	}{
		{"text message", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.TextMessage, []byte("hello"))
		}, websocket.CloseUnsupportedData},
		{"oversized message", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.BinaryMessage, make([]byte, maxClientMessage+1))
		}, websocket.CloseMessageTooBig},
		// The test server hangs up on a message type it does not know.
		{"VNC server hangs up", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.BinaryMessage, []byte{0xee})
		}, websocket.CloseNormalClosure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil)
			c := connectRFB(t, r.mustDial(r.tokens.issue(inst1, time.Minute)))
			if err := tt.send(c.ws); err != nil {
				t.Fatal(err)
			}
			if ce := closeCode(t, c.ws); ce.Code != tt.code {
				t.Errorf("close %d %q, want %d", ce.Code, ce.Text, tt.code)
			}
			select {
			case <-r.vnc.disconnects:
			case <-time.After(5 * time.Second):
				t.Fatal("the VNC connection outlived the session")
			}
		})
	}
}

func TestDialFailure(t *testing.T) {
	r := newRig(t, nil)
	tok := r.tokens.issue(Target{InstanceUUID: inst1.InstanceUUID, HostID: "host-gone"}, time.Minute)
	_, resp, err := r.dial(tok, r.origin(), "binary")
	if err == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("dial: %v (%s), want 502", err, status(resp))
	}
}

func TestTokenRefusal(t *testing.T) {
	tests := []struct {
		err    error
		status int
	}{
		{fault.Unauthorizedf("expired"), 401},
		{fault.NotFoundf("no such token"), 401},
		{fault.Invalidf("malformed"), 401},
		{fault.Forbiddenf("not yours"), 403},
		{fault.Conflictf("instance is not running"), 409},
		{fault.New(fault.Unavailable, "database busy"), 503},
		{errors.New("boom"), 500},
	}
	for _, tt := range tests {
		if got, _ := tokenRefusal(tt.err); got != tt.status {
			t.Errorf("%v: %d, want %d", tt.err, got, tt.status)
		}
	}
}
