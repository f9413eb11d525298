package tinyimage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// reverter undoes multi-step work in reverse order (DESIGN §9): each step
// that creates something (a loop device, a mount, a temporary file)
// registers its undo right after it succeeds.
type reverter struct {
	log   *slog.Logger
	steps []revertStep
}

type revertStep struct {
	name string
	undo func(context.Context) error
}

func newReverter(log *slog.Logger) *reverter { return &reverter{log: log} }

// Add registers the undo of a step that just succeeded.
func (r *reverter) Add(name string, undo func(context.Context) error) {
	r.steps = append(r.steps, revertStep{name: name, undo: undo})
}

// Success forgets the registered steps: the work is to be kept.
func (r *reverter) Success() { r.steps = nil }

// Revert runs every undo, newest first, even when some fail, and returns
// their joined errors. It runs on a context detached from ctx's cancellation
// so that an interrupted build still unmounts and detaches what it made.
func (r *reverter) Revert(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var errs []error
	for i := len(r.steps) - 1; i >= 0; i-- {
		s := r.steps[i]
		if err := s.undo(ctx); err != nil {
			r.log.Warn("tiny image: undo failed", "step", s.name, "err", err)
			errs = append(errs, fmt.Errorf("undo %s: %w", s.name, err))
		}
	}
	r.steps = nil
	return errors.Join(errs...)
}
