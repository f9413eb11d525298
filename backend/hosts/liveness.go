package hosts

import (
	"context"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/events"
)

// liveness remembers what was last announced of each host, so that only
// changes reach the bus.
type liveness struct {
	known map[string]hostState // host ID → state last published
}

type hostState struct{ up, disabled bool }

// announce publishes h's state when it differs from what was last
// published; quiet records it without publishing (the first look).
func (r *Registry) announce(h Host, now time.Time, quiet bool) {
	if r.cfg.Events == nil {
		return
	}
	st := hostState{up: h.Up(now, r.cfg.DownAfter), disabled: h.Disabled}
	r.liveMu.Lock()
	prev, seen := r.live.known[h.ID]
	r.live.known[h.ID] = st
	r.liveMu.Unlock()
	if quiet || (seen && prev == st) {
		return
	}
	r.cfg.Events.Publish(events.Event{Kind: events.KindHost, ID: h.ID, Name: h.Hostname, Up: st.up, Disabled: st.disabled, At: now})
}

// announceID re-reads host id and announces it (after an operator's change).
func (r *Registry) announceID(ctx context.Context, id string) {
	if r.cfg.Events == nil {
		return
	}
	h, _, err := r.store.get(context.WithoutCancel(ctx), id)
	if err != nil {
		r.log.WarnContext(ctx, "read host for its event", "host_id", id, "err", err)
		return
	}
	r.announce(*h, r.cfg.Now(), false)
}

// watchLiveness notices hosts that fall silent: nothing reports that a
// host is down, it only stops heartbeating. A heartbeat announces a host
// coming back at once; this loop catches the rest within a tick.
func (r *Registry) watchLiveness(ctx context.Context) {
	tick := min(r.cfg.HeartbeatInterval, r.cfg.DownAfter/4)
	t := time.NewTicker(max(tick, 50*time.Millisecond))
	defer t.Stop()
	for {
		hs, err := r.store.list(ctx)
		if err == nil {
			now := r.cfg.Now()
			for _, h := range hs {
				r.announce(h, now, false)
			}
		} else if ctx.Err() == nil {
			r.log.Warn("host liveness", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
