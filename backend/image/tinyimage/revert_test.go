package tinyimage

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
)

func TestReverter(t *testing.T) {
	var ran []string
	step := func(name string, err error) func(context.Context) error {
		return func(ctx context.Context) error {
			if ctx.Err() != nil {
				t.Errorf("undo %s ran with a cancelled context", name)
			}
			ran = append(ran, name)
			return err
		}
	}
	boom := errors.New("busy")

	r := newReverter(slog.New(slog.DiscardHandler))
	r.Add("attach", step("attach", nil))
	r.Add("mount", step("mount", boom))
	r.Add("copy", step("copy", nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // an interrupted build must still clean up
	err := r.Revert(ctx)
	if want := []string{"copy", "mount", "attach"}; !reflect.DeepEqual(ran, want) {
		t.Fatalf("undo order %v, want %v (and every step despite a failure)", ran, want)
	}
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the failing undo's error", err)
	}
	ran = nil
	if err := r.Revert(context.Background()); err != nil || len(ran) != 0 {
		t.Fatalf("second Revert ran %v, %v; want nothing", ran, err)
	}

	r.Add("keep", step("keep", nil))
	r.Success()
	if err := r.Revert(context.Background()); err != nil || len(ran) != 0 {
		t.Fatalf("Revert after Success ran %v, %v", ran, err)
	}
}
