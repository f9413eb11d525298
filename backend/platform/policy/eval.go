package policy

import "github.com/nimbus-cloud/nimbus/backend/platform/auth"

// eval evaluates a compiled tree. It allocates nothing: rule references are
// map lookups and templates are matched piecewise. It is only called on
// rules build found free of cycles, so recursion is bounded.
func (s *snapshot) eval(n *node, c *auth.Credentials, t Target) bool {
	switch n.op {
	case opTrue:
		return true
	case opFalse:
		return false
	case opNot:
		return !s.eval(n.kids[0], c, t)
	case opAnd:
		for _, k := range n.kids {
			if !s.eval(k, c, t) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if s.eval(k, c, t) {
				return true
			}
		}
		return false
	case opRule:
		r := s.rules[n.name]
		return r != nil && !r.broken && s.eval(r.root, c, t)
	case opRole:
		for _, role := range c.Roles {
			if n.match.matches(t, role, true) {
				return true
			}
		}
		return false
	case opLiteral:
		return n.match.matches(t, n.name, false)
	case opCred:
		return evalCred(n.field, n.match, c, t)
	}
	return false
}

// evalCred compares a credential field with a match template. An empty
// field is absent (oslo sees None), so it never matches: an unscoped token
// must not pass "project_id:%(project_id)s" against a target whose
// project_id is also empty.
func evalCred(f field, m template, c *auth.Credentials, t Target) bool {
	var v string
	switch f {
	case fieldUserID:
		v = c.UserID
	case fieldUserDomainID:
		v = c.UserDomainID
	case fieldProjectID:
		v = c.ProjectID
	case fieldProjectDomainID:
		v = c.ProjectDomainID
	case fieldDomainID:
		v = c.DomainID
	case fieldSystemScope:
		if c.System {
			v = "all"
		}
	case fieldRoles:
		for _, r := range c.Roles {
			if m.matches(t, r, false) {
				return true
			}
		}
		return false
	case fieldIsAdmin:
		return matchBool(m, t, c.IsAdmin())
	case fieldIsAdminProject:
		// oslo.context defaults is_admin_project to True when no admin
		// project is configured, and Nimbus has none.
		return matchBool(m, t, true)
	}
	return v != "" && m.matches(t, v, false)
}

// matchBool matches a boolean flag. oslo compares str(True), "True", but
// policy files in the wild spell the same flag is_admin:True (Nova) and
// is_admin:1 (Keystone), so both spellings, and lowercase, are accepted.
func matchBool(m template, t Target, b bool) bool {
	if b {
		return m.matches(t, "True", false) || m.matches(t, "true", false) || m.matches(t, "1", false)
	}
	return m.matches(t, "False", false) || m.matches(t, "false", false) || m.matches(t, "0", false)
}

// always reports whether n allows whatever the credentials, which is what
// decides for nil credentials: nothing about an unknown caller can be
// checked, so only a rule that allows everyone (such as "@") passes.
func (s *snapshot) always(n *node) bool {
	switch n.op {
	case opTrue:
		return true
	case opNot:
		return s.never(n.kids[0])
	case opAnd:
		for _, k := range n.kids {
			if !s.always(k) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if s.always(k) {
				return true
			}
		}
		return false
	case opRule:
		r := s.rules[n.name]
		return r != nil && !r.broken && s.always(r.root)
	}
	return false
}

// never reports whether n denies whatever the credentials.
func (s *snapshot) never(n *node) bool {
	switch n.op {
	case opFalse:
		return true
	case opNot:
		return s.always(n.kids[0])
	case opAnd:
		for _, k := range n.kids {
			if s.never(k) {
				return true
			}
		}
		return false
	case opOr:
		for _, k := range n.kids {
			if !s.never(k) {
				return false
			}
		}
		return true
	case opRule:
		// An unknown rule does evaluate false, but claiming it never
		// allows would let "not rule:typo" admit anonymous callers; stay
		// conservative.
		r := s.rules[n.name]
		return r != nil && !r.broken && s.never(r.root)
	}
	return false
}
