// Package policy is the one authorization engine every Nimbus service uses.
// It implements oslo.policy's semantics: rules named by API action
// ("os_compute_api:servers:create", "identity:list_users") whose checks are
// oslo rule expressions ("role:member and project_id:%(project_id)s"),
// compiled once and evaluated against a caller's credentials and the target
// object. Each service registers its default rules at wiring time; an
// operator's policy.yaml (or policy.json) overrides them by name, exactly as
// with OpenStack.
package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"gopkg.in/yaml.v3"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Rule is a named policy rule: an API action or a helper that other rules
// reference with "rule:<name>".
type Rule struct {
	Name string
	// Check is an oslo.policy expression; "" always allows.
	Check string
	// Description says what the rule guards, for generated sample files.
	Description string
}

// Target describes the object an action touches, with flat keys such as
// "project_id", "user_id" or "target.project.domain_id". A check's
// "%(key)s" is looked up here; a missing key makes that check false.
type Target map[string]string

// Engine holds the compiled rules. Defaults come from Register, overrides
// from LoadFile; an override wins whatever the order of the calls, as in
// oslo. Allowed and Enforce are safe for concurrent use with each other and
// with Register and LoadFile, and take no lock: writers publish an
// immutable snapshot.
type Engine struct {
	mu        sync.Mutex // serialises writers
	defaults  map[string]entry
	overrides map[string]entry
	snap      atomic.Pointer[snapshot]
}

// entry is a rule compiled once, shared by every snapshot that includes it.
type entry struct {
	rule Rule
	root *node
	refs []string
}

// compiled is a rule within one snapshot. broken is per snapshot because
// whether a rule reaches a cycle depends on the other rules present.
type compiled struct {
	entry
	override bool
	broken   bool
}

// snapshot is the effective rule set at one moment.
type snapshot struct {
	rules map[string]*compiled
}

// New returns an engine holding defaults. Like Register, it panics if a
// default does not parse.
func New(defaults []Rule) *Engine {
	e := &Engine{}
	e.Register(defaults...)
	return e
}

// Register adds default rules. Defaults are source code, so a check that
// does not parse, an empty name, or the same name registered twice with a
// different check is a programming error and panics, the way
// regexp.MustCompile does, stopping the program at start-up instead of
// silently denying later. Registering an identical rule again is harmless,
// so several services may each register BaseRules.
func (e *Engine) Register(rules ...Rule) {
	compiled := make([]entry, 0, len(rules))
	for _, r := range rules {
		if r.Name == "" {
			panic(fmt.Sprintf("policy: default rule with check %q has no name", r.Check))
		}
		root, err := parse(r.Check)
		if err != nil {
			panic(fmt.Sprintf("policy: default rule %q: %v", r.Name, err))
		}
		compiled = append(compiled, entry{rule: r, root: root, refs: refs(root, nil)})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Build a new map so a panic leaves the engine as it was.
	defaults := make(map[string]entry, len(e.defaults)+len(compiled))
	for k, v := range e.defaults {
		defaults[k] = v
	}
	for _, c := range compiled {
		old, ok := defaults[c.rule.Name]
		if !ok {
			defaults[c.rule.Name] = c
		} else if old.rule.Check != c.rule.Check {
			panic(fmt.Sprintf("policy: default rule %q registered twice: %q and %q", c.rule.Name, old.rule.Check, c.rule.Check))
		}
	}
	e.defaults = defaults
	s, _ := build(e.defaults, e.overrides)
	e.snap.Store(s)
}

// LoadFile replaces the overrides with the rules in the oslo policy file at
// path: a YAML (or JSON, which is YAML) map from rule name to expression,
// the deprecated list syntax included. File rules replace defaults of the
// same name and may add new ones. A missing file means no overrides, since
// most deployments run on the defaults. A rule that does not parse, or a
// cycle of rule: references through a file rule, is an error naming the
// rules, and leaves the previous rules in force.
func (e *Engine) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("read policy file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("policy file %s: %w", path, err)
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	overrides := make(map[string]entry, len(raw))
	var errs []error
	for _, name := range names {
		var root *node
		var check string
		var err error
		switch v := raw[name].(type) {
		case string:
			check = v
			root, err = parse(v)
		case []any:
			check = fmt.Sprint(v)
			root, err = parseList(v)
		default:
			err = fmt.Errorf("want a string, got %T", v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("policy file %s: rule %q: %w", path, name, err))
			continue
		}
		overrides[name] = entry{rule: Rule{Name: name, Check: check}, root: root, refs: refs(root, nil)}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	s, cycles := build(e.defaults, overrides)
	for _, cyc := range cycles {
		if slices.ContainsFunc(cyc, func(n string) bool { return s.rules[n].override }) {
			errs = append(errs, fmt.Errorf("policy file %s: rules form a cycle: %s", path, strings.Join(cyc, " -> ")))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	e.overrides = overrides
	e.snap.Store(s)
	return nil
}

// build merges defaults and overrides into a snapshot and marks every rule
// that can reach a cycle of rule: references as broken, so evaluation never
// follows a cycle. It returns the cycles found, each as the names along it
// with the first repeated at the end.
func build(defaults, overrides map[string]entry) (*snapshot, [][]string) {
	s := &snapshot{rules: make(map[string]*compiled, len(defaults)+len(overrides))}
	for name, d := range defaults {
		s.rules[name] = &compiled{entry: d}
	}
	for name, o := range overrides {
		c := &compiled{entry: o, override: true}
		if d, ok := defaults[name]; ok {
			c.rule.Description = d.rule.Description
		}
		s.rules[name] = c
	}

	const (
		unseen = iota
		onStack
		done
	)
	state := make(map[string]int, len(s.rules))
	var stack []string
	var cycles [][]string
	// visit is a depth-first search; a reference to a rule still on the
	// stack closes a cycle, and brokenness propagates to every rule that
	// reaches one.
	var visit func(name string) bool
	visit = func(name string) bool {
		r := s.rules[name]
		if r == nil {
			return false // unknown rules evaluate false; not a cycle
		}
		switch state[name] {
		case onStack:
			i := slices.Index(stack, name)
			cycles = append(cycles, append(slices.Clone(stack[i:]), name))
			return true
		case done:
			return r.broken
		}
		state[name] = onStack
		stack = append(stack, name)
		for _, ref := range r.refs {
			if visit(ref) {
				r.broken = true
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return r.broken
	}
	names := make([]string, 0, len(s.rules))
	for name := range s.rules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		visit(name)
	}
	return s, cycles
}

// Rules returns the effective rules, overrides applied, sorted by name.
func (e *Engine) Rules() []Rule {
	s := e.snap.Load()
	if s == nil {
		return nil
	}
	out := make([]Rule, 0, len(s.rules))
	for _, r := range s.rules {
		out = append(out, r.rule)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Allowed reports whether the credentials c may perform action on target t.
// An unknown action, a rule that reaches a cycle, and nil credentials (for
// anything but a rule that allows everyone, such as "@") are denied.
func (e *Engine) Allowed(action string, c *auth.Credentials, t Target) bool {
	if e == nil {
		return false
	}
	s := e.snap.Load()
	if s == nil {
		return false
	}
	r := s.rules[action]
	if r == nil || r.broken {
		return false
	}
	if c == nil {
		return s.always(r.root)
	}
	return s.eval(r.root, c, t)
}

// Enforce is Allowed as an error: nil when allowed, otherwise a fault of
// kind Forbidden carrying the message Nova and Keystone give.
func (e *Engine) Enforce(action string, c *auth.Credentials, t Target) error {
	if e.Allowed(action, c, t) {
		return nil
	}
	return fault.Forbiddenf("Policy doesn't allow %s to be performed.", action)
}

// Authorize checks that the caller whose credentials ctx carries may
// perform action on t, and returns those credentials. A context without
// credentials is fault Unauthorized; a denial is fault Forbidden.
func (e *Engine) Authorize(ctx context.Context, action string, t Target) (*auth.Credentials, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.Enforce(action, c, t); err != nil {
		return nil, err
	}
	return c, nil
}
