package netplane

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netns"
)

// iptables is the part of go-iptables the plane uses (Tailscale's linuxfw
// style): the real one for a host or a namespace, and a fake that keeps
// state in unit tests. Rule specs are in `iptables -S` form without the
// leading "-A <chain>", written exactly as iptables prints them so a
// converged chain compares equal.
type iptables interface {
	ListChains(table string) ([]string, error)
	ChainExists(table, chain string) (bool, error)
	NewChain(table, chain string) error
	ClearAndDeleteChain(table, chain string) error
	// List returns the chain as `iptables -S <chain>` prints it.
	List(table, chain string) ([]string, error)
	Exists(table, chain string, rulespec ...string) (bool, error)
	Insert(table, chain string, pos int, rulespec ...string) error
	Append(table, chain string, rulespec ...string) error
	Delete(table, chain string, rulespec ...string) error
	DeleteById(table, chain string, id int) error
}

func newHostIPTables() (*goipt.IPTables, error) {
	return goipt.New(goipt.IPFamily(goipt.ProtocolIPv4), goipt.Timeout(30))
}

// nsIPTables runs every call inside a named network namespace: a goroutine
// locked to its OS thread enters the namespace with setns, runs go-iptables
// (whose iptables child inherits the thread's namespace) and goes back. A
// thread that cannot go back is left locked, so the runtime discards it.
type nsIPTables struct {
	ns    string
	inner iptables
}

func (n nsIPTables) do(f func() error) error { return inNamespace(n.ns, f) }

// inNamespace runs f on an OS thread that has entered the named namespace.
func inNamespace(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the goroutine exits and the thread dies with it.
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func (n nsIPTables) ListChains(table string) (out []string, err error) {
	err = n.do(func() error { out, err = n.inner.ListChains(table); return err })
	return out, err
}
func (n nsIPTables) ChainExists(table, chain string) (ok bool, err error) {
	err = n.do(func() error { ok, err = n.inner.ChainExists(table, chain); return err })
	return ok, err
}
func (n nsIPTables) NewChain(table, chain string) error {
	return n.do(func() error { return n.inner.NewChain(table, chain) })
}
func (n nsIPTables) ClearAndDeleteChain(table, chain string) error {
	return n.do(func() error { return n.inner.ClearAndDeleteChain(table, chain) })
}
func (n nsIPTables) List(table, chain string) (out []string, err error) {
	err = n.do(func() error { out, err = n.inner.List(table, chain); return err })
	return out, err
}
func (n nsIPTables) Exists(table, chain string, spec ...string) (ok bool, err error) {
	err = n.do(func() error { ok, err = n.inner.Exists(table, chain, spec...); return err })
	return ok, err
}
func (n nsIPTables) Insert(table, chain string, pos int, spec ...string) error {
	return n.do(func() error { return n.inner.Insert(table, chain, pos, spec...) })
}
func (n nsIPTables) Append(table, chain string, spec ...string) error {
	return n.do(func() error { return n.inner.Append(table, chain, spec...) })
}
func (n nsIPTables) Delete(table, chain string, spec ...string) error {
	return n.do(func() error { return n.inner.Delete(table, chain, spec...) })
}
func (n nsIPTables) DeleteById(table, chain string, id int) error {
	return n.do(func() error { return n.inner.DeleteById(table, chain, id) })
}

// rule is one rule spec as a word list.
type rule []string

func (r rule) String() string { return strings.Join(r, " ") }

func r(words ...string) rule { return rule(words) }

// chainRules returns a chain's rules as specs (without "-A <chain> ").
func chainRules(ipt iptables, table, chain string) ([]string, error) {
	lines, err := ipt.List(table, chain)
	if err != nil {
		return nil, err
	}
	var out []string
	prefix := "-A " + chain + " "
	for _, l := range lines {
		if s, ok := strings.CutPrefix(l, prefix); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// syncChain makes chain hold exactly want, in order. It never empties the
// chain on the way: wanted rules are inserted ahead of the stale ones, which
// are deleted afterwards, so a filter chain is never briefly open.
func syncChain(ipt iptables, table, chain string, want []rule) (changed bool, err error) {
	ok, err := ipt.ChainExists(table, chain)
	if err != nil {
		return false, fmt.Errorf("chain %s/%s: %w", table, chain, err)
	}
	if !ok {
		if err := ipt.NewChain(table, chain); err != nil {
			return false, fmt.Errorf("new chain %s/%s: %w", table, chain, err)
		}
		changed = true
	}
	have, err := chainRules(ipt, table, chain)
	if err != nil {
		return changed, fmt.Errorf("list %s/%s: %w", table, chain, err)
	}
	wantS := make([]string, len(want))
	for i, w := range want {
		wantS[i] = w.String()
	}
	if slices.Equal(have, wantS) {
		return changed, nil
	}
	cur := slices.Clone(have)
	for i, w := range want {
		if i < len(cur) && cur[i] == wantS[i] {
			continue
		}
		if err := ipt.Insert(table, chain, i+1, w...); err != nil {
			return true, fmt.Errorf("insert into %s/%s: %w", table, chain, err)
		}
		cur = slices.Insert(cur, i, wantS[i])
	}
	for len(cur) > len(want) {
		if err := ipt.DeleteById(table, chain, len(want)+1); err != nil {
			return true, fmt.Errorf("trim %s/%s: %w", table, chain, err)
		}
		cur = slices.Delete(cur, len(want), len(want)+1)
	}
	return true, nil
}

// ensureJump makes sure from holds the jump spec (at the top when first).
func ensureJump(ipt iptables, table, from string, first bool, spec rule) error {
	ok, err := ipt.Exists(table, from, spec...)
	if err != nil {
		return fmt.Errorf("check %s/%s: %w", table, from, err)
	}
	if ok {
		return nil
	}
	if first {
		err = ipt.Insert(table, from, 1, spec...)
	} else {
		err = ipt.Append(table, from, spec...)
	}
	if err != nil {
		return fmt.Errorf("add to %s/%s: %w", table, from, err)
	}
	return nil
}

// deleteRuleAll removes every copy of spec from chain; a missing chain is fine.
func deleteRuleAll(ipt iptables, table, chain string, spec rule) error {
	if ok, err := ipt.ChainExists(table, chain); err != nil || !ok {
		return err
	}
	for {
		ok, err := ipt.Exists(table, chain, spec...)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if err := ipt.Delete(table, chain, spec...); err != nil {
			return err
		}
	}
}

// deleteChain flushes and removes chain; a missing chain is fine.
func deleteChain(ipt iptables, table, chain string) error {
	ok, err := ipt.ChainExists(table, chain)
	if err != nil || !ok {
		return err
	}
	return ipt.ClearAndDeleteChain(table, chain)
}
