package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
)

// dialLive opens c's /live socket for page with the given Origin.
func (e *cenv) dialLive(c *client, page, origin string) (*websocket.Conn, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + liveURL + "?page=" + url.QueryEscape(page)
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if ck := c.sessionCookie(); ck != "" {
		h.Set("Cookie", SessionCookie+"="+ck)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial(u, h)
}

// collect reads messages from conn until one contains want or timeout.
func collect(conn *websocket.Conn, want string, timeout time.Duration) (string, bool) {
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
		if strings.Contains(string(msg), want) {
			return all.String(), true
		}
	}
	return all.String(), false
}

func TestLive(t *testing.T) {
	e := newComputeEnv(t)
	pa, pb := e.createProject("proj-a"), e.createProject("proj-b")
	e.createMember("alice", "alice-Secret-1", pa)
	e.createMember("bob", "bob-Secret-1", pb)
	alice, bob, admin := e.client(), e.client(), e.adminClient()
	alice.login("alice", "alice-Secret-1")
	bob.login("bob", "bob-Secret-1")

	// Refused: no session, another site's page, no Origin.
	if _, r, err := e.dialLive(e.client(), "/project/instances", e.srv.URL); err == nil || r == nil || r.StatusCode == http.StatusSwitchingProtocols {
		t.Fatalf("upgrade without a session: %v", err)
	}
	for _, origin := range []string{"http://evil.example", ""} {
		_, r, err := e.dialLive(alice, "/project/instances", origin)
		if err == nil || r == nil || r.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: %v, %+v", origin, err, r)
		}
	}

	wa, _, err := e.dialLive(alice, "/project/instances", e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer wa.Close()
	wb, _, err := e.dialLive(bob, "/project/instances", e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	wadm, _, err := e.dialLive(admin, "/admin/instances", e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer wadm.Close()
	// A tab that never reads: it must not hold up the others.
	stalled, _, err := e.dialLive(alice, "/project/instances", e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()

	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	res, err := e.comp.CreateServers(actx, compute.ServerCreate{Name: "live-1", ImageRef: e.imageID, FlavorRef: e.tiny,
		MinCount: 1, MaxCount: 1, Networks: compute.NetworksNone})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Servers[0].ID
	row := `id="instance-` + id + `"`

	// Alice's tab gets the row going to Active, rendered as the project list.
	got, ok := collect(wa, "status-active", 10*time.Second)
	if !ok || !strings.Contains(got, row) || !strings.Contains(got, "live-1") {
		t.Fatalf("alice's messages:\n%s", got)
	}
	// The admin's All instances tab gets it too, with the project's name.
	got, ok = collect(wadm, "status-active", 10*time.Second)
	if !ok || !strings.Contains(got, row) || !strings.Contains(got, "proj-a") {
		t.Fatalf("admin's messages:\n%s", got)
	}

	// Deletion removes the row in place.
	if err := e.comp.DeleteServer(actx, id); err != nil {
		t.Fatal(err)
	}
	if got, ok := collect(wa, `hx-swap-oob="delete"`, 10*time.Second); !ok || !strings.Contains(got, row) {
		t.Fatalf("alice's messages after delete:\n%s", got)
	}

	// Bob, in another project, heard nothing of it.
	if got, _ := collect(wb, id, 500*time.Millisecond); strings.Contains(got, id) || got != "" {
		t.Fatalf("bob received:\n%s", got)
	}

	// The stalled tab's queue overflowed while the others were served; when
	// it reads again it is told to resync.
	for i := 0; i < liveQueue+10; i++ {
		e.bus.Publish(eventFor(pa.ID, id))
	}
	if got, ok := collect(stalled, "live-resync", 5*time.Second); !ok {
		t.Fatalf("stalled tab got no resync:\n%s", got)
	}
}

func eventFor(project, id string) events.Event {
	return events.Event{Kind: events.KindInstance, ID: id, ProjectID: project, Deleted: true}
}
