package hosts_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/agenttest"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func spec(uuid string) agentapi.InstanceSpec {
	return agentapi.InstanceSpec{
		UUID: uuid, Name: "vm", ProjectID: "p1", VCPUs: 1, MemoryMB: 128, RootGB: 1,
		Image: agentapi.Image{ID: "img1", DiskFormat: "qcow2", Size: 4, Checksum: strings.Repeat("ab", 64)},
	}
}

const (
	uuid1 = "11111111-1111-4111-8111-111111111111"
	uuid2 = "22222222-2222-4222-8222-222222222222"
)

// syncBuffer is a log sink tests can read while the agent writes.
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

// requestCtx returns a context carrying a request ID, as the API
// middleware gives every request.
func requestCtx() (context.Context, string) {
	var ctx context.Context
	rest.WithRequestID(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { ctx = r.Context() })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	return ctx, rest.RequestID(ctx)
}

func TestClientAgainstAgent(t *testing.T) {
	e := newEnv(t)
	logs := &syncBuffer{}
	ag := agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{
		Hostname: "node1", Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	ctx, reqID := requestCtx()
	c, err := e.reg.Client(ctx, ag.ID)
	if err != nil {
		t.Fatal(err)
	}

	h, err := c.Health(ctx)
	if err != nil || h.AgentID != ag.ID || h.Hostname != "node1" || h.Inventory.VCPUs != 8 {
		t.Fatalf("Health = %+v, %v", h, err)
	}

	if err := c.Spawn(ctx, "op-spawn", spec(uuid1)); err != nil {
		t.Fatal(err)
	}
	if op := e.rec.op(t, "op-spawn"); op.Status != agentapi.OpSucceeded || op.PowerState != agentapi.PowerRunning || op.UUID != uuid1 || op.Kind != "spawn" {
		t.Fatalf("spawn outcome %+v", op)
	}
	if !strings.Contains(logs.String(), reqID) {
		t.Errorf("agent logs do not carry the request ID %s", reqID)
	}
	st, err := c.State(ctx, uuid1)
	if err != nil || st.PowerState != agentapi.PowerRunning {
		t.Fatalf("State = %+v, %v", st, err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].UUID != uuid1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	out, err := c.ConsoleLog(ctx, uuid1, 1)
	if err != nil || out != "nimbus-guest: ready\n" {
		t.Fatalf("ConsoleLog = %q, %v", out, err)
	}

	if err := c.Act(ctx, "op-pause", uuid1, agentapi.Action{Kind: agentapi.ActionPause}); err != nil {
		t.Fatal(err)
	}
	if op := e.rec.op(t, "op-pause"); op.Status != agentapi.OpSucceeded || op.PowerState != agentapi.PowerPaused {
		t.Fatalf("pause outcome %+v", op)
	}
	if err := c.Act(ctx, "op-suspend", uuid1, agentapi.Action{Kind: agentapi.ActionResume}); err != nil {
		t.Fatal(err)
	}
	if op := e.rec.op(t, "op-suspend"); op.Status != agentapi.OpFailed || !strings.Contains(op.Error, "Cannot resume") {
		t.Fatalf("resume of a paused instance: %+v", op)
	}

	// Errors keep their kind across the wire.
	errTests := []struct {
		name string
		call func() error
		want fault.Kind
	}{
		{"state of unknown instance", func() error { _, err := c.State(ctx, uuid2); return err }, fault.NotFound},
		{"console of unknown instance", func() error { _, err := c.ConsoleLog(ctx, uuid2, 0); return err }, fault.NotFound},
		{"action on unknown instance", func() error { return c.Act(ctx, "op-x", uuid2, agentapi.Action{Kind: agentapi.ActionStop}) }, fault.NotFound},
		{"unknown action", func() error { return c.Act(ctx, "op-y", uuid1, agentapi.Action{Kind: "explode"}) }, fault.Invalid},
		{"spawn without operation ID", func() error { return c.Spawn(ctx, "", spec(uuid2)) }, fault.Invalid},
		{"spawn with bad spec", func() error { s := spec(uuid2); s.VCPUs = 0; return c.Spawn(ctx, "op-z", s) }, fault.Invalid},
		{"not a UUID", func() error { _, err := c.State(ctx, "../../etc"); return err }, fault.Invalid},
		{"operation ID reused for other work", func() error { return c.Act(ctx, "op-pause", uuid1, agentapi.Action{Kind: agentapi.ActionStop}) }, fault.Conflict},
		{"vnc of paused instance without console", func() error { _, err := c.DialVNC(ctx, uuid1); return err }, fault.Conflict},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !isKind(err, tc.want) {
				t.Fatalf("err = %v (kind %v), want kind %v", err, fault.KindOf(err), tc.want)
			}
		})
	}

	if err := c.Destroy(ctx, "op-del", uuid1); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(ctx, "op-del2", uuid1); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
	if _, err := c.State(ctx, uuid1); !isKind(err, fault.NotFound) {
		t.Fatalf("State after destroy: %v", err)
	}
}

func TestClientVNC(t *testing.T) {
	e := newEnv(t)
	ag := agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{})
	ctx := context.Background()
	c, err := e.reg.Client(ctx, ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Spawn(ctx, "op-1", spec(uuid1)); err != nil {
		t.Fatal(err)
	}
	e.rec.op(t, "op-1")

	// A stand-in VNC server: greets like RFB, then echoes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.Write([]byte("RFB 003.008\n"))
				io.Copy(conn, conn)
			}()
		}
	}()
	ag.Fake.SetVNCPort(uuid1, ln.Addr().(*net.TCPAddr).Port)

	s, err := c.DialVNC(ctx, uuid1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	greeting := make([]byte, 12)
	if _, err := io.ReadFull(s, greeting); err != nil || string(greeting) != "RFB 003.008\n" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	msg := bytes.Repeat([]byte("pixels"), 20000) // more than one websocket frame
	go s.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo mismatch: %v", err)
	}
}

func TestClientUnreachableAndRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// An agent that is gone: its port is closed.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	_, cred := e.join(t, e.token(t), "gone", deadURL)
	c, err := e.reg.Client(ctx, cred.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.State(ctx, uuid1); !isKind(err, fault.Unavailable) {
		t.Fatalf("unreachable agent: %v", err)
	}
	if err := c.Spawn(ctx, "op-1", spec(uuid1)); !isKind(err, fault.Unavailable) {
		t.Fatalf("unreachable agent spawn: %v", err)
	}
	if _, err := c.DialVNC(ctx, uuid1); !isKind(err, fault.Unavailable) {
		t.Fatalf("unreachable agent vnc: %v", err)
	}
	if _, err := e.reg.Client(ctx, "no-such-host"); !isKind(err, fault.NotFound) {
		t.Fatalf("Client of unknown host: %v", err)
	}

	// An agent whose credential is out of step refuses the controller;
	// that is the host's problem, not the user's: Unavailable.
	ag := agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{Hostname: "node2", HeartbeatInterval: time.Hour})
	if _, err := e.db.Exec(`UPDATE hosts SET secret = ? WHERE id = ?`, "c2VjcmV0", ag.ID); err != nil {
		t.Fatal(err)
	}
	c, err = e.reg.Client(ctx, ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(ctx); !isKind(err, fault.Unavailable) {
		t.Fatalf("refused credential: %v", err)
	}
}
