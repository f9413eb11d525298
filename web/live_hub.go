package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// hubQueue bounds the events waiting for the hub itself; past it the hub
// has fallen behind the bus and every tab is told to resync.
const hubQueue = 1024

// liveHub fans the bus out to the connected tabs. One goroutine reads the
// bus, decides which tabs may see each event, renders the fragment once per
// class of viewer (same page kind, project and roles) with the first such
// viewer's own credentials, and queues it on each tab without waiting: a
// tab whose queue is full is marked for a resync instead.
type liveHub struct {
	s     *Server
	sub   *events.Subscription
	queue int // per-tab queue length
	// recheck is how often each tab's token is validated again.
	recheck time.Duration
	// csrfMark stands for the CSRF token in fragments rendered once for a
	// class of viewers; each tab's copy carries its own session's token.
	csrfMark []byte

	mu      sync.Mutex
	clients map[*liveClient]struct{}
	done    chan struct{}
}

func newLiveHub(s *Server, bus *events.Bus) *liveHub {
	h := &liveHub{s: s, sub: bus.Subscribe(hubQueue), queue: liveQueue, recheck: liveRecheck,
		csrfMark: []byte("csrf-" + rand.Text()),
		clients:  map[*liveClient]struct{}{}, done: make(chan struct{})}
	go h.run()
	return h
}

// close stops the hub; connected tabs end when their sockets do.
func (h *liveHub) close() {
	h.sub.Close()
	<-h.done
}

func (h *liveHub) add(c *liveClient) {
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
}

func (h *liveHub) remove(c *liveClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

func (h *liveHub) snapshot() []*liveClient {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*liveClient, 0, len(h.clients))
	for c := range h.clients {
		out = append(out, c)
	}
	return out
}

func (h *liveHub) run() {
	defer close(h.done)
	for ev := range h.sub.C() {
		clients := h.snapshot()
		if h.sub.Dropped() {
			// The hub itself fell behind: nobody can trust their page.
			for _, c := range clients {
				c.markResync()
			}
		}
		h.dispatch(ev, clients)
	}
}

// liveClient is one connected tab.
type liveClient struct {
	r    *http.Request // the upgrade request: the viewer's credentials
	v    *viewer
	page atomic.Pointer[livePage]
	send chan []byte
	// resync is set when messages were dropped; kick wakes the writer.
	resync atomic.Bool
	kick   chan struct{}
}

func newLiveClient(r *http.Request, queue int, page string) *liveClient {
	c := &liveClient{r: r, v: viewerFrom(r), send: make(chan []byte, queue), kick: make(chan struct{}, 1)}
	c.setPage(page)
	return c
}

func (c *liveClient) setPage(raw string) {
	p := parseLivePage(raw)
	c.page.Store(&p)
}

// enqueue queues msg without ever waiting for the tab.
func (c *liveClient) enqueue(msg []byte) {
	select {
	case c.send <- msg:
	default:
		c.markResync()
	}
}

func (c *liveClient) markResync() {
	c.resync.Store(true)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Kinds of page a tab shows, as far as live updates go.
const (
	pageOther = iota
	pageInstances
	pageAllInstances
	pageInstance // one instance's page
	pageHosts    // hypervisors or compute services
	pageTopology // the project's network topology
)

// livePage is what a tab shows: it decides which events concern it and
// the shape of the fragments it gets.
type livePage struct {
	kind int
	id   string // pageInstance: the instance; pageHosts: "services" on the services page
	tab  string // pageInstance: the open tab ("overview" by default)
}

func parseLivePage(raw string) livePage {
	u, err := url.Parse(raw)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return livePage{}
	}
	switch p := strings.TrimSuffix(u.Path, "/"); {
	case p == views.InstancesURL:
		return livePage{kind: pageInstances}
	case p == views.AllInstancesURL:
		return livePage{kind: pageAllInstances}
	case p == views.HypervisorsURL:
		return livePage{kind: pageHosts}
	case p == views.ComputeServiceURL:
		return livePage{kind: pageHosts, id: "services"}
	case p == views.TopologyURL:
		return livePage{kind: pageTopology}
	case strings.HasPrefix(p, views.InstancesURL+"/"):
		id := strings.TrimPrefix(p, views.InstancesURL+"/")
		if id == "" || strings.Contains(id, "/") {
			return livePage{}
		}
		tab := u.Query().Get("tab")
		if tab == "" {
			tab = "overview"
		}
		return livePage{kind: pageInstance, id: id, tab: tab}
	}
	return livePage{}
}

// dispatch sends ev to every client that may see it.
func (h *liveHub) dispatch(ev events.Event, clients []*liveClient) {
	cache := map[string][]byte{}
	for _, c := range clients {
		p := *c.page.Load()
		var msg []byte
		switch ev.Kind {
		case events.KindInstance:
			msg = h.instanceMessage(c, p, ev, cache)
		case events.KindHost:
			if p.kind == pageHosts && c.v.Creds.IsAdmin() {
				msg = renderFragment(c.r.Context(), views.HostStateBadge(ev.ID, ev.Up))
				if p.id == "services" {
					// A host's network agents live and die with it: their
					// table is fetched again.
					msg = append(msg, liveResync()...)
				}
			}
		case events.KindNetwork:
			// The drawing joins many resources: the tab fetches it again,
			// with its own rights, as it does after a resync (app.js
			// coalesces a burst of these into one fetch).
			if p.kind == pageTopology && (ev.ProjectID == "" || ev.ProjectID == c.v.ProjectID) {
				msg = liveResync()
			}
		}
		if len(msg) > 0 {
			c.enqueue(msg)
		}
	}
}

// instanceMessage is what c, showing p, gets of ev: its row or its page's
// badges when the tab shows them, and a toast when c's user started the
// action that ended.
func (h *liveHub) instanceMessage(c *liveClient, p livePage, ev events.Event, cache map[string][]byte) []byte {
	v := c.v
	admin := v.Creds.IsAdmin()
	var part []byte
	switch {
	case p.kind == pageInstances && ev.ProjectID == v.ProjectID,
		p.kind == pageAllInstances && admin,
		p.kind == pageInstance && p.id == ev.ID && (ev.ProjectID == v.ProjectID || admin):
		// Rows carry per-viewer actions and the admin list names projects:
		// one rendering per page kind, project and set of roles.
		key := strings.Join([]string{strconv.Itoa(p.kind), p.tab, v.ProjectID, strings.Join(slices.Sorted(slices.Values(v.Creds.Roles)), ",")}, "|")
		var ok bool
		if part, ok = cache[key]; !ok {
			part = h.renderInstance(c, p, ev)
			cache[key] = part
		}
	}
	if bytes.Contains(part, h.csrfMark) {
		part = bytes.ReplaceAll(part, h.csrfMark, []byte(html.EscapeString(v.CSRF)))
	}
	if ev.Action != "" && ev.Result != "" && ev.UserID == v.UserID {
		part = append(slices.Clip(part), liveToast(ev)...)
	}
	return part
}

// renderInstance renders ev's instance for c's page, reading it with c's
// credentials: what c may not read, c does not get.
func (h *liveHub) renderInstance(c *liveClient, p livePage, ev events.Event) []byte {
	s := h.s
	ctx := views.WithCSRF(c.r.Context(), string(h.csrfMark))
	var srv *compute.Server
	var err error
	if !ev.Deleted {
		srv, err = s.comp.GetServer(ctx, ev.ID)
	}
	gone := ev.Deleted || fault.Is(err, fault.NotFound)
	if err != nil && !gone {
		return nil // forbidden or failing: nothing, a reload shows the truth
	}
	if p.kind == pageInstance {
		if gone {
			return renderFragment(ctx, views.InstanceBadges(views.InstanceRow{Status: "DELETED"}))
		}
		row := s.instanceRow(c.r, srv, s.imageNamer(ctx), views.Path(views.InstancesURL, srv.ID))
		return renderFragment(ctx, views.InstanceBadges(row))
	}
	if gone {
		return []byte(`<tr id="instance-` + html.EscapeString(ev.ID) + `" hx-swap-oob="delete"></tr>`)
	}
	back := views.InstancesURL
	if p.kind == pageAllInstances {
		back = views.AllInstancesURL
	}
	row := s.instanceRow(c.r, srv, s.imageNamer(ctx), back)
	if p.kind == pageAllInstances {
		row.Project = nameOr(s.projectNames(ctx), srv.ProjectID)
	}
	return renderFragment(ctx, views.InstanceRowView(row, canWrite(c.v)))
}

// liveToast is the toast for the end of the viewer's action: app.js turns
// the swapped-in line into the same toast an HX-Trigger makes.
func liveToast(ev events.Event) []byte {
	name := ev.Name
	if name == "" {
		name = ev.ID
	}
	label := actionLabel(ev.Action)
	level, text := "success", label+" of "+name+" finished."
	if ev.Action == compute.ActionCreate {
		text = name + " is ready."
	}
	if ev.Result == events.ResultError {
		level, text = "error", label+" of "+name+" failed"
		if ev.Message != "" {
			text += ": " + ev.Message
		} else {
			text += "."
		}
	}
	return []byte(`<div id="live-toast" hx-swap-oob="innerHTML"><span data-level="` + level + `">` +
		html.EscapeString(text) + `</span></div>`)
}

// actionLabel names an instance action (compute's names) for people.
func actionLabel(a string) string {
	switch a {
	case compute.ActionCreate:
		return "Launch"
	case compute.ActionCreateImage:
		return "Snapshot"
	case compute.ActionConfirm:
		return "Resize confirmation"
	case compute.ActionRevert:
		return "Resize revert"
	}
	if a == "" {
		return "Action"
	}
	return strings.ToUpper(a[:1]) + a[1:]
}

func renderFragment(ctx context.Context, c templ.Component) []byte {
	var buf bytes.Buffer
	if err := c.Render(context.WithoutCancel(ctx), &buf); err != nil {
		return nil
	}
	return buf.Bytes()
}
