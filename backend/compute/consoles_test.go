package compute_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func consoleToken(t *testing.T, c *compute.Console) string {
	t.Helper()
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := u.Query().Get("path")
	i := strings.Index(p, "token=")
	if i < 0 {
		t.Fatalf("no token in %s", c.URL)
	}
	return p[i+len("token="):]
}

func TestConsoleTokens(t *testing.T) {
	e := newEnvWith(t, envOptions{sched: func(c *compute.Config) { c.ConsoleTokenTTL = 200 * time.Millisecond }})
	ag := e.agent("node1", 8, 16384, 200)
	id := e.boot(e.alice, "vnc", "1", nil)
	e.waitStatus(e.alice, id, "ACTIVE")
	ag.Fake.SetVNCPort(id, 5900)
	eventually(t, 5*time.Second, func() bool {
		s, _ := e.svc.GetServer(e.alice.Ctx, id)
		return s.VNCPort == 5900
	}, "the VNC port")

	// Bob cannot open alice's console.
	if _, err := e.svc.CreateConsole(e.bob.Ctx, id, "vnc", "novnc"); !fault.Is(err, fault.NotFound) {
		t.Fatalf("bob's console: %v", err)
	}
	cases := []struct {
		name  string
		after func(tok string)
		ok    bool
	}{
		{"fresh", func(string) {}, true},
		{"expired", func(string) { time.Sleep(300 * time.Millisecond) }, false},
		{"garbled", nil, false},
		{"port changed", func(string) {
			ag.Fake.SetVNCPort(id, 5901)
			eventually(t, 5*time.Second, func() bool {
				s, _ := e.svc.GetServer(e.alice.Ctx, id)
				return s.VNCPort == 5901
			}, "the new VNC port")
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			con, err := e.svc.CreateConsole(e.alice.Ctx, id, "vnc", "novnc")
			if err != nil {
				t.Fatal(err)
			}
			tok := consoleToken(t, con)
			if c.after == nil {
				tok += "x"
			} else {
				c.after(tok)
			}
			tgt, err := e.svc.ConsumeConsoleToken(e.admin.Ctx, tok)
			if c.ok != (err == nil) {
				t.Fatalf("consume: %+v %v, want ok=%v", tgt, err, c.ok)
			}
			if err != nil && !fault.Is(err, fault.Unauthorized) {
				t.Fatalf("kind of %v", err)
			}
		})
	}
	// A token issued while active is refused once the server stops.
	con, err := e.svc.CreateConsole(e.alice.Ctx, id, "vnc", "novnc")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.StopServer(e.alice.Ctx, id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(e.alice, id, "SHUTOFF")
	if _, err := e.svc.ConsumeConsoleToken(e.admin.Ctx, consoleToken(t, con)); !fault.Is(err, fault.Unauthorized) {
		t.Fatalf("token of a stopped server: %v", err)
	}
	if _, err := e.svc.CreateConsole(e.alice.Ctx, id, "vnc", "novnc"); !fault.Is(err, fault.Conflict) {
		t.Fatalf("console of a stopped server: %v", err)
	}
}
