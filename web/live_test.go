package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/views"
)

// dialLive opens c's /live socket for page with the given Origin, through
// d (a default dialer when nil).
func (e *cenv) dialLiveWith(d *websocket.Dialer, c *client, page, origin string) (*websocket.Conn, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + liveURL + "?page=" + url.QueryEscape(page)
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if ck := c.sessionCookie(); ck != "" {
		h.Set("Cookie", SessionCookie+"="+ck)
	}
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	}
	return d.Dial(u, h)
}

func (e *cenv) dialLive(c *client, page, origin string) (*websocket.Conn, *http.Response, error) {
	return e.dialLiveWith(nil, c, page, origin)
}

// mustLive opens c's socket for page from this site, and waits until the
// hub has it, so that no event is missed.
func (e *cenv) mustLive(c *client, page string) *websocket.Conn {
	e.t.Helper()
	before := e.liveClients()
	conn, _, err := e.dialLive(c, page, e.srv.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	e.waitLiveClients(before + 1)
	return conn
}

func (e *cenv) liveClients() int { return len(e.web.hub.snapshot()) }

func (e *cenv) waitLiveClients(n int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.liveClients() < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d live clients, want %d", e.liveClients(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// collect reads messages from conn until one contains want (and all of
// also) or timeout.
func collect(conn *websocket.Conn, want string, timeout time.Duration, also ...string) (string, bool) {
	var all strings.Builder
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(deadline)
		_, msg, err := conn.ReadMessage()
		if err != nil {
			break
		}
		all.Write(msg)
		all.WriteString("\n")
		if strings.Contains(string(msg), want) && !slices.ContainsFunc(also, func(a string) bool { return !strings.Contains(string(msg), a) }) {
			return all.String(), true
		}
	}
	return all.String(), false
}

// liveEnv is a compute env with alice in project A, bob in project B and
// their contexts for the compute service.
type liveEnv struct {
	*cenv
	pa, pb                   string // project IDs
	alice, bob, admin        *client
	aliceCtx, bobCtx, admCtx context.Context
}

func newLiveEnv(t testing.TB) *liveEnv {
	e := newComputeEnv(t)
	pa, pb := e.createProject("proj-a"), e.createProject("proj-b")
	e.createMember("alice", "alice-Secret-1", pa)
	e.createMember("bob", "bob-Secret-1", pb)
	l := &liveEnv{cenv: e, pa: pa.ID, pb: pb.ID, alice: e.client(), bob: e.client(), admin: e.adminClient()}
	l.alice.login("alice", "alice-Secret-1")
	l.bob.login("bob", "bob-Secret-1")
	l.aliceCtx = e.userCtx("alice", "alice-Secret-1", pa.ID)
	l.bobCtx = e.userCtx("bob", "bob-Secret-1", pb.ID)
	l.admCtx = e.adminCtx()
	return l
}

func TestLiveRefusesOtherSitesAndStrangers(t *testing.T) {
	l := newLiveEnv(t)
	if _, r, err := l.dialLive(l.client(), "/project/instances", l.srv.URL); err == nil || r == nil || r.StatusCode == http.StatusSwitchingProtocols {
		t.Fatalf("upgrade without a session: %v", err)
	}
	for _, origin := range []string{"http://evil.example", "", "null", strings.Replace(l.srv.URL, "http:", "ftp:", 1)} {
		_, r, err := l.dialLive(l.alice, "/project/instances", origin)
		if err == nil || r == nil || r.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: %v, %+v", origin, err, r)
		}
	}
	if l.liveClients() != 0 {
		t.Fatalf("%d refused sockets joined the hub", l.liveClients())
	}
}

// TestLiveEndsAtSignOut: signing out in one tab ends the other tabs'
// sockets, which would otherwise live as long as the token.
func TestLiveEndsAtSignOut(t *testing.T) {
	l := newLiveEnv(t)
	l.web.hub.recheck = 50 * time.Millisecond
	w := l.mustLive(l.alice, "/project/instances")
	if r := l.alice.post("/auth/logout", url.Values{}); r.status >= 400 {
		t.Fatalf("logout: %d", r.status)
	}
	_ = w.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := w.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("after sign-out: %v", err)
	}
}

// TestLiveRowsByProject: each viewer receives the rows of what it may see,
// rendered as its page renders them, and nothing else; the user who
// launched an instance gets a toast when it is ready.
func TestLiveRowsByProject(t *testing.T) {
	l := newLiveEnv(t)
	wa := l.mustLive(l.alice, "/project/instances")
	wb := l.mustLive(l.bob, "/project/instances")
	wadm := l.mustLive(l.admin, "/admin/instances")

	id := l.launch(l.aliceCtx, "live-a")
	row := `id="instance-` + id + `"`
	// BUILD first, then ACTIVE, each a row swap rendered as the project list.
	got, ok := collect(wa, "status-active", 10*time.Second)
	if !ok || !strings.Contains(got, row) || !strings.Contains(got, "status-build") || !strings.Contains(got, "live-a") {
		t.Fatalf("alice's messages:\n%s", got)
	}
	if !strings.Contains(got, `id="live-toast"`) {
		if more, ok := collect(wa, `id="live-toast"`, 5*time.Second); !ok {
			t.Fatalf("alice got no toast:\n%s%s", got, more)
		}
	}
	// The admin's All instances tab gets it too, with the project's name.
	got, ok = collect(wadm, "status-active", 10*time.Second)
	if !ok || !strings.Contains(got, row) || !strings.Contains(got, "proj-a") || strings.Contains(got, "live-toast") {
		t.Fatalf("admin's messages:\n%s", got)
	}

	other := l.launch(l.bobCtx, "live-b")
	if got, ok := collect(wb, "status-active", 10*time.Second, `id="instance-`+other+`"`); !ok {
		t.Fatalf("bob's messages:\n%s", got)
	}
	if got, ok := collect(wadm, "status-active", 10*time.Second, other); !ok {
		t.Fatalf("admin's messages for bob's instance:\n%s", got)
	}

	// Deletion removes the row in place.
	if err := l.comp.DeleteServer(l.aliceCtx, id); err != nil {
		t.Fatal(err)
	}
	if got, ok := collect(wa, `hx-swap-oob="delete"`, 10*time.Second); !ok || !strings.Contains(got, row) {
		t.Fatalf("alice's messages after delete:\n%s", got)
	}
	l.waitGone(id)

	// Neither heard anything of the other's project.
	if got, _ := collect(wb, id, 300*time.Millisecond); strings.Contains(got, id) {
		t.Fatalf("bob received alice's instance:\n%s", got)
	}
	if got, _ := collect(wa, other, 300*time.Millisecond); strings.Contains(got, other) {
		t.Fatalf("alice received bob's instance:\n%s", got)
	}
}

// TestLiveRowsCarryTheirOwnCSRFToken: two sessions of the same class share
// one rendering of a row, but each row's forms carry its own session's
// CSRF token, never the other's.
func TestLiveRowsCarryTheirOwnCSRFToken(t *testing.T) {
	l := newLiveEnv(t)
	alice2 := l.client()
	alice2.login("alice", "alice-Secret-1")
	l.alice.get("/project/instances")
	alice2.get("/project/instances")
	if l.alice.csrf == "" || l.alice.csrf == alice2.csrf {
		t.Fatalf("tokens %q %q", l.alice.csrf, alice2.csrf)
	}
	w1 := l.mustLive(l.alice, "/project/instances")
	w2 := l.mustLive(alice2, "/project/instances")
	id := l.launch(l.aliceCtx, "csrf")
	for _, tc := range []struct {
		conn        *websocket.Conn
		mine, other string
	}{{w1, l.alice.csrf, alice2.csrf}, {w2, alice2.csrf, l.alice.csrf}} {
		got, ok := collect(tc.conn, "status-active", 10*time.Second, id)
		if !ok || !strings.Contains(got, `name="csrf_token" value="`+tc.mine+`"`) || strings.Contains(got, tc.other) ||
			strings.Contains(got, string(l.web.hub.csrfMark)) {
			t.Fatalf("row with the wrong token:\n%s", got)
		}
	}
}

// TestLiveInstancePage: an instance's page gets its badges, follows its
// console log, and an admin on the hypervisors page sees a host go down.
func TestLiveInstancePage(t *testing.T) {
	l := newLiveEnv(t)
	id := l.launch(l.aliceCtx, "detail")
	l.waitStatus(id, "ACTIVE")
	page := l.mustLive(l.alice, "/project/instances/"+id)
	if err := l.comp.StopServer(l.aliceCtx, id); err != nil {
		t.Fatal(err)
	}
	got, ok := collect(page, "status-shutoff", 10*time.Second)
	// (powering-off shows too when the hub renders before the agent is done)
	if !ok || !strings.Contains(got, `id="instance-badges"`) {
		t.Fatalf("detail messages:\n%s", got)
	}
	if strings.Contains(got, "<tr") {
		t.Fatalf("the instance page got a list row:\n%s", got)
	}
	if err := l.comp.StartServer(l.aliceCtx, id); err != nil {
		t.Fatal(err)
	}
	l.waitStatus(id, "ACTIVE")

	// Switching to the console log tab (told over the socket) follows it.
	if err := page.WriteJSON(liveHello{Page: "/project/instances/" + id + "?tab=log"}); err != nil {
		t.Fatal(err)
	}
	if got, ok := collect(page, `id="console-log"`, 10*time.Second); !ok || !strings.Contains(got, `innerHTML:#tab-panel`) {
		t.Fatalf("no console log:\n%s", got)
	}

	hyp := l.mustLive(l.admin, "/admin/hypervisors")
	member := l.mustLive(l.alice, "/admin/hypervisors") // not an admin: nothing
	hs, err := l.reg.List(context.Background())
	if err != nil || len(hs) != 1 {
		t.Fatalf("hosts %v %v", hs, err)
	}
	if err := l.reg.SetForcedDown(context.Background(), hs[0].ID, true); err != nil {
		t.Fatal(err)
	}
	if got, ok := collect(hyp, `id="host-state-`+hs[0].ID+`"`, 5*time.Second); !ok || !strings.Contains(got, "Down") {
		t.Fatalf("hypervisors page:\n%s", got)
	}
	if got, _ := collect(member, "host-state", 300*time.Millisecond); got != "" {
		t.Fatalf("a member got host badges:\n%s", got)
	}
}

// TestLiveTopology: a network change tells the topology tabs that may see
// it to fetch the drawing again: the project's own change its project, a
// shared one everybody; other pages hear nothing of it.
func TestLiveTopology(t *testing.T) {
	l := newLiveEnv(t)
	ta := l.mustLive(l.alice, views.TopologyURL)
	tb := l.mustLive(l.bob, views.TopologyURL)
	list := l.mustLive(l.alice, "/project/instances")
	l.waitLiveClients(3)
	const refresh = `id="live-resync"`
	l.bus.Publish(events.Event{Kind: events.KindNetwork, ID: "net-a", ProjectID: l.pa})
	if got, ok := collect(ta, refresh, 5*time.Second); !ok {
		t.Fatalf("alice's topology tab was not told to redraw:\n%s", got)
	}
	l.bus.Publish(events.Event{Kind: events.KindNetwork, ID: "public", ProjectID: ""})
	for name, c := range map[string]*websocket.Conn{"alice": ta, "bob": tb} {
		if got, ok := collect(c, refresh, 5*time.Second); !ok {
			t.Fatalf("%s's topology tab missed the shared network's change:\n%s", name, got)
		}
	}
	// Events reach each tab in order: bob's first message was the shared
	// change, and it was his only one.
	if got, _ := collect(tb, refresh, 300*time.Millisecond); got != "" {
		t.Fatalf("bob's topology tab heard of alice's network:\n%s", got)
	}
	if got, _ := collect(list, refresh, 300*time.Millisecond); got != "" {
		t.Fatalf("the instances tab was told to redraw for a network:\n%s", got)
	}
}

// TestLiveStalledTab: a tab that stops reading fills its socket and its
// queue; the hub never waits for it, other tabs get their rows on time,
// and when it reads again it is told to resync.
func TestLiveStalledTab(t *testing.T) {
	l := newLiveEnv(t)
	id := l.launch(l.aliceCtx, "stall")
	l.waitStatus(id, "ACTIVE")

	fast := l.mustLive(l.alice, "/project/instances")
	var mu sync.Mutex
	var fastGot strings.Builder
	shutoff := make(chan time.Time, 1)
	go func() {
		for {
			_, msg, err := fast.ReadMessage()
			if err != nil {
				return
			}
			mu.Lock()
			fastGot.Write(msg)
			mu.Unlock()
			if strings.Contains(string(msg), "status-shutoff") {
				select {
				case shutoff <- time.Now():
				default:
				}
			}
		}
	}()
	// A tiny receive buffer, so that the server's writes soon block.
	small := &websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: (&net.Dialer{
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
			}); err != nil {
				return err
			}
			return serr
		}}).DialContext}
	before := l.liveClients()
	stalled, _, err := l.dialLiveWith(small, l.alice, "/project/instances", l.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	l.waitLiveClients(before + 1)

	// Announce the instance until the stalled tab overflows; each
	// announcement is a full row rendered from the real instance.
	overflowed := func() bool {
		for _, c := range l.web.hub.snapshot() {
			if c.resync.Load() {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(20 * time.Second)
	for !overflowed() {
		if time.Now().After(deadline) {
			t.Fatal("the stalled tab never overflowed")
		}
		// Gently enough for a reading tab to keep up.
		for range 10 {
			l.bus.Publish(events.Event{Kind: events.KindInstance, ID: id, ProjectID: l.pa})
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A real change still reaches the reading tab while the stalled tab
	// has not read a byte: the stalled tab holds nobody up. (How fast is
	// BenchmarkFanOut100's business, not a test's.)
	if err := l.comp.StopServer(l.aliceCtx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-shutoff:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the reading tab got no shutoff row; it got %d bytes", fastGot.Len())
	}

	// The stalled tab reads again: what was queued, then the resync.
	if got, ok := collect(stalled, "live-resync", 5*time.Second); !ok {
		t.Fatalf("the stalled tab got no resync (%d bytes)", len(got))
	}
}

func TestParseLivePage(t *testing.T) {
	for raw, want := range map[string]livePage{
		"/project/instances":                  {kind: pageInstances},
		"/project/instances?sort=name":        {kind: pageInstances},
		"/admin/instances":                    {kind: pageAllInstances},
		"/admin/hypervisors":                  {kind: pageHosts},
		"/admin/services":                     {kind: pageHosts, id: "services"},
		"/project/network-topology":           {kind: pageTopology},
		"/project/instances/abc":              {kind: pageInstance, id: "abc", tab: "overview"},
		"/project/instances/abc?tab=log":      {kind: pageInstance, id: "abc", tab: "log"},
		"/project/instances/abc/log":          {},
		"/project/overview":                   {},
		"http://evil.example/admin/instances": {},
	} {
		if got := parseLivePage(raw); got != want {
			t.Errorf("%q: %+v, want %+v", raw, got, want)
		}
	}
}
