package web

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// liveURL is the live-updates WebSocket, one per tab.
const liveURL = "/live"

const (
	// liveQueue bounds the events waiting for one browser: a slow or dead
	// tab loses events (and is resynced) instead of holding up the bus.
	liveQueue = 64
	// liveWriteWait bounds one write to a browser.
	liveWriteWait = 5 * time.Second
	// livePongWait is how long a browser may stay silent (no pong) before
	// its socket is closed; pings go out at 9/10 of it.
	livePongWait = 60 * time.Second
)

// liveResync is the message that tells a tab it missed events: it swaps
// into #live-resync, and app.js then re-fetches the page's live regions.
func liveResync() []byte {
	// innerHTML keeps the target in the page, so htmx:oobAfterSwap bubbles.
	return []byte(`<div id="live-resync" hx-swap-oob="innerHTML"><span data-at="` +
		time.Now().UTC().Format(time.RFC3339Nano) + `"></span></div>`)
}

// live is GET /live: a logged-in tab's WebSocket. It carries HTML
// fragments for htmx's out-of-band swaps (the htmx ws extension): each
// instance row the viewer may see, re-rendered with the viewer's own
// rights when the instance changes, or removed when it is gone. ?page= is
// the page the tab shows, which decides the row's shape (project or admin
// list). The session's token bounds the socket's life.
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	if s.bus == nil || s.comp == nil {
		http.NotFound(w, r)
		return
	}
	v := viewerFrom(r)
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 8192, CheckOrigin: sameOrigin}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	page := r.URL.Query().Get("page")
	sub := s.bus.Subscribe(liveQueue)
	defer sub.Close()

	// The reader only notices the browser leaving; htmx sends nothing we use.
	gone := make(chan struct{})
	conn.SetReadLimit(4096)
	_ = conn.SetReadDeadline(time.Now().Add(livePongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(livePongWait)) })
	go func() {
		defer close(gone)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	ping := time.NewTicker(livePongWait * 9 / 10)
	defer ping.Stop()
	expiry := time.Until(v.ExpiresAt)
	if v.ExpiresAt.IsZero() {
		expiry = 24 * time.Hour
	}
	expired := time.NewTimer(expiry)
	defer expired.Stop()

	write := func(kind int, b []byte) bool {
		_ = conn.SetWriteDeadline(time.Now().Add(liveWriteWait))
		return conn.WriteMessage(kind, b) == nil
	}
	for {
		select {
		case <-gone:
			return
		case <-expired.C:
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "session expired"), time.Now().Add(time.Second))
			return
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(liveWriteWait)) != nil {
				return
			}
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			if sub.Dropped() {
				// Events were lost: what is queued is stale too; skip it
				// and let the tab fetch the current state.
				for len(sub.C()) > 0 {
					<-sub.C()
				}
				if !write(websocket.TextMessage, liveResync()) {
					return
				}
				continue
			}
			msg, err := s.liveMessage(r, page, ev)
			if fault.Is(err, fault.Unauthorized) {
				return // the token was revoked: the next page load logs out
			}
			if len(msg) > 0 && !write(websocket.TextMessage, msg) {
				return
			}
		}
	}
}

// liveMessage renders what the viewer of page should see of ev: nothing
// for what it may not see.
func (s *Server) liveMessage(r *http.Request, page string, ev events.Event) ([]byte, error) {
	if ev.Kind != events.KindInstance {
		return nil, nil
	}
	v := viewerFrom(r)
	admin := page == views.AllInstancesURL && v.Creds.IsAdmin()
	if !admin && ev.ProjectID != v.ProjectID {
		return nil, nil
	}
	removed := []byte(`<tr id="instance-` + ev.ID + `" hx-swap-oob="delete"></tr>`)
	if ev.Deleted {
		return removed, nil
	}
	ctx := r.Context()
	srv, err := s.comp.GetServer(ctx, ev.ID)
	if fault.Is(err, fault.NotFound) {
		return removed, nil
	}
	if err != nil {
		return nil, err
	}
	back := views.InstancesURL
	if admin {
		back = views.AllInstancesURL
	}
	row := s.instanceRow(r, srv, s.imageNamer(ctx), back)
	if admin {
		row.Project = nameOr(s.projectNames(ctx), srv.ProjectID)
	}
	var buf bytes.Buffer
	if err := views.InstanceRowView(row, canWrite(v)).Render(context.WithoutCancel(ctx), &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sameOrigin admits a WebSocket only from this site's own pages: the
// browser's Origin must name the host the request came to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) && (u.Scheme == "http" || u.Scheme == "https")
}
