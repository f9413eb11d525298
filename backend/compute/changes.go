package compute

import (
	"context"

	"github.com/nimbus-cloud/nimbus/backend/platform/events"
)

// actionEnd is the end of an action a user started, announced with the
// instance's new state so that whoever started it hears how it went.
type actionEnd struct {
	// actionID is the instance action; "" is the instance's latest create.
	actionID string
	ok       bool
	message  string
}

// changed announces instance id's state on the bus, read after the
// transaction that changed it committed, so a subscriber that reacts by
// reading the instance sees the new state. end, when set, also reports the
// end of a user's action. Every transaction that writes an instance's
// states (they all go through changeInstance, insertServer or
// finishDelete) calls it once it has committed.
func (s *Service) changed(ctx context.Context, id string, end *actionEnd) {
	if s.cfg.Events == nil {
		return
	}
	// The event matters even when the request that caused it has gone.
	ctx = context.WithoutCancel(ctx)
	ev, err := s.st.instanceEvent(ctx, id)
	if err != nil {
		s.log.Warn("read instance for its event", "instance", id, "err", err)
		return
	}
	ev.At = s.now()
	if end != nil {
		ev.Result, ev.Message = events.ResultError, end.message
		if end.ok {
			ev.Result, ev.Message = events.ResultSuccess, ""
		}
		if ev.Action, ev.UserID, err = s.st.actionStarter(ctx, id, end.actionID); err != nil {
			s.log.Warn("read instance action for its event", "instance", id, "err", err)
		}
	}
	s.cfg.Events.Publish(ev)
}
