package network

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// Rule directions and ethertypes.
const (
	DirIngress = "ingress"
	DirEgress  = "egress"
	EtherIPv4  = "IPv4"
	EtherIPv6  = "IPv6"
)

const defaultGroupName = "default"

// protocolNumbers are the protocol names a rule accepts, as Neutron's
// IP_PROTOCOL_MAP has them.
var protocolNumbers = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4,
	"ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// Protocols whose rules may carry a port range.
var portProtocols = map[int]bool{6: true, 17: true, 33: true, 132: true, 136: true}

// SecurityGroupCreate is a new security group.
type SecurityGroupCreate struct {
	ProjectID   string
	Name        string
	Description string
	Stateful    *bool
}

// SecurityGroupUpdate changes the non-nil attributes of a security group.
type SecurityGroupUpdate struct {
	Name        *string
	Description *string
	Stateful    *bool
}

// SecurityGroupRuleCreate is a new rule. Protocol is a name, a number
// 0-255, or "" (or "any") for any; Ethertype "" is IPv4.
type SecurityGroupRuleCreate struct {
	SecurityGroupID string
	Direction       string
	Ethertype       string
	Protocol        string
	PortRangeMin    *int
	PortRangeMax    *int
	RemoteIPPrefix  string
	RemoteGroupID   string
	Description     string
}

func ownedTarget(project string) policy.Target {
	return policy.Target{"project_id": project, "tenant_id": project}
}

// visibleGroup loads a security group c may see (its project's), or
// answers SecurityGroupNotFound.
func (s *Service) visibleGroup(x *q, c *auth.Credentials, id string) (*SecurityGroup, error) {
	g, err := x.securityGroup(id)
	if err != nil {
		return nil, err
	}
	if !s.canSeeOwned(c, g.ProjectID, "get_security_group") {
		return nil, errSecurityGroupNotFound(id)
	}
	return g, nil
}

// canSeeOwned reports whether c may see a resource of project that only
// its project sees.
func (s *Service) canSeeOwned(c *auth.Credentials, project, getAction string) bool {
	return (s.isAdmin(c) || project == c.ProjectID) && s.allowed(c, getAction, ownedTarget(project))
}

// ensureDefaultGroup returns the project's default group, creating it with
// Neutron's default rules (ingress from the group itself and egress
// anywhere, for IPv4 and IPv6) on first use.
func (s *Service) ensureDefaultGroup(x *q, project string) (string, []event, error) {
	id, err := x.defaultSecurityGroup(project)
	if err != nil || id != "" {
		return id, nil, err
	}
	now := s.now()
	g := &SecurityGroup{
		ID: newID(), ProjectID: project, Name: defaultGroupName, Description: "Default security group",
		Stateful: true, RevisionNumber: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := x.insertSecurityGroup(g); err != nil {
		return "", nil, err
	}
	if err := x.setDefaultSecurityGroup(project, g.ID); err != nil {
		return "", nil, err
	}
	for _, dir := range []string{DirIngress, DirEgress} {
		for _, eth := range []string{EtherIPv4, EtherIPv6} {
			r := SecurityGroupRule{
				ID: newID(), SecurityGroupID: g.ID, ProjectID: project, Direction: dir, Ethertype: eth,
				RevisionNumber: 1, CreatedAt: now, UpdatedAt: now,
			}
			if dir == DirIngress {
				r.RemoteGroupID = g.ID
			}
			if err := x.insertRule(&r, ruleFingerprint(&r)); err != nil {
				return "", nil, err
			}
			g.Rules = append(g.Rules, r)
		}
	}
	return g.ID, []event{func(ctx context.Context, nt Notifier) { nt.SecurityGroupChanged(ctx, OpCreate, g) }}, nil
}

// ensureCallerDefault makes the caller's project's default group exist, as
// Neutron does when a project first lists or uses security groups. It
// reads first so the common case takes no write lock.
func (s *Service) ensureCallerDefault(ctx context.Context, c *auth.Credentials) error {
	if c.ProjectID == "" {
		return nil
	}
	if id, err := s.st.read(ctx).defaultSecurityGroup(c.ProjectID); err != nil || id != "" {
		return err
	}
	var evs []event
	err := s.st.write(ctx, func(x *q) error {
		var err error
		_, evs, err = s.ensureDefaultGroup(x, c.ProjectID)
		return err
	})
	if err == nil {
		s.fire(ctx, evs)
	}
	return err
}

// GetSecurityGroup returns a security group of the caller's project with
// its rules. Faults: Unauthorized, NotFound.
func (s *Service) GetSecurityGroup(ctx context.Context, id string) (*SecurityGroup, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.visibleGroup(s.st.read(ctx), c, id)
}

// ListSecurityGroups lists the caller's security groups (all of them for
// an admin) that match o, first making its project's default group.
// Faults: Unauthorized, Invalid, NotFound (marker).
func (s *Service) ListSecurityGroups(ctx context.Context, o ListOptions) ([]SecurityGroup, bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := s.ensureCallerDefault(ctx, c); err != nil {
		return nil, false, err
	}
	return listOwned(s, s.st.read(ctx), c, sgSpec, o, (*q).securityGroups,
		func(x *SecurityGroup) string { return x.ProjectID }, "get_security_group")
}

// CreateSecurityGroup creates a security group with Neutron's two default
// egress rules (any IPv4, any IPv6). The name "default" is reserved.
// Faults: Unauthorized, Forbidden, Invalid, Conflict (OverQuota,
// SecurityGroupDefaultAlreadyExists).
func (s *Service) CreateSecurityGroup(ctx context.Context, in SecurityGroupCreate) (*SecurityGroup, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := resolveProject(c, in.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := s.enforce(c, "create_security_group", ownedTarget(project)); err != nil {
		return nil, err
	}
	if err := checkText("name", in.Name, maxNameLen); err != nil {
		return nil, err
	}
	if err := checkText("description", in.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	if in.Name == defaultGroupName {
		return nil, fault409("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
	}
	now := s.now()
	g := &SecurityGroup{
		ID: newID(), ProjectID: project, Name: in.Name, Description: in.Description, Stateful: true,
		RevisionNumber: 1, CreatedAt: now, UpdatedAt: now, Rules: []SecurityGroupRule{},
	}
	if in.Stateful != nil {
		g.Stateful = *in.Stateful
	}
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		_, dev, err := s.ensureDefaultGroup(x, project)
		if err != nil {
			return err
		}
		evs = dev
		if err := s.checkQuota(x, project, "security_group", 1); err != nil {
			return err
		}
		if err := x.insertSecurityGroup(g); err != nil {
			return err
		}
		for _, eth := range []string{EtherIPv4, EtherIPv6} {
			r := SecurityGroupRule{ID: newID(), SecurityGroupID: g.ID, ProjectID: project, Direction: DirEgress,
				Ethertype: eth, RevisionNumber: 1, CreatedAt: now, UpdatedAt: now}
			if err := x.insertRule(&r, ruleFingerprint(&r)); err != nil {
				return err
			}
			g.Rules = append(g.Rules, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	evs = append(evs, func(ctx context.Context, nt Notifier) { nt.SecurityGroupChanged(ctx, OpCreate, g) })
	s.fire(ctx, evs)
	return g, nil
}

// UpdateSecurityGroup renames or redescribes a group; the default group
// keeps its name and no other group may take it. Faults: Unauthorized,
// Forbidden, NotFound, Invalid, Conflict.
func (s *Service) UpdateSecurityGroup(ctx context.Context, id string, u SecurityGroupUpdate) (*SecurityGroup, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkPtrText("name", u.Name, maxNameLen); err != nil {
		return nil, err
	}
	if err := checkPtrText("description", u.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	var g *SecurityGroup
	err = s.st.write(ctx, func(x *q) error {
		var err error
		if g, err = s.visibleGroup(x, c, id); err != nil {
			return err
		}
		if err := s.enforce(c, "update_security_group", ownedTarget(g.ProjectID)); err != nil {
			return err
		}
		if u.Name != nil && *u.Name != g.Name {
			isDefault, err := x.isDefaultSecurityGroup(id)
			if err != nil {
				return err
			}
			if isDefault {
				return fault409("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
			}
			if *u.Name == defaultGroupName {
				return fault409("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
			}
			g.Name = *u.Name
		}
		if u.Description != nil {
			g.Description = *u.Description
		}
		if u.Stateful != nil && *u.Stateful != g.Stateful {
			if k, err := x.securityGroupPorts(id); err != nil {
				return err
			} else if k > 0 {
				return fault409("SecurityGroupInUse", "Security Group %s in use.", id)
			}
			g.Stateful = *u.Stateful
		}
		g.RevisionNumber++
		g.UpdatedAt = s.now()
		return x.updateSecurityGroup(g)
	})
	if err != nil {
		return nil, err
	}
	s.fire(ctx, []event{func(ctx context.Context, nt Notifier) { nt.SecurityGroupChanged(ctx, OpUpdate, g) }})
	return g, nil
}

// DeleteSecurityGroup deletes a group no port uses; rules of other groups
// naming it as their remote group go with it. Only an admin may delete a
// project's default group. Faults: Unauthorized, Forbidden, NotFound,
// Conflict (SecurityGroupInUse, SecurityGroupCannotRemoveDefault).
func (s *Service) DeleteSecurityGroup(ctx context.Context, id string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	var g *SecurityGroup
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		var err error
		if g, err = s.visibleGroup(x, c, id); err != nil {
			return err
		}
		if err := s.enforce(c, "delete_security_group", ownedTarget(g.ProjectID)); err != nil {
			return err
		}
		if isDefault, err := x.isDefaultSecurityGroup(id); err != nil {
			return err
		} else if isDefault && !s.isAdmin(c) {
			return fault409("SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
		}
		if k, err := x.securityGroupPorts(id); err != nil {
			return err
		} else if k > 0 {
			return fault409("SecurityGroupInUse", "Security Group %s in use.", id)
		}
		// Groups whose rules point at this one change too.
		referrers, err := x.groupsReferring(id)
		if err != nil {
			return err
		}
		if err := x.deleteSecurityGroup(id); err != nil {
			return err
		}
		others, err := x.securityGroups(referrers)
		if err != nil {
			return err
		}
		for i := range others {
			o := &others[i]
			evs = append(evs, func(ctx context.Context, nt Notifier) { nt.SecurityGroupChanged(ctx, OpUpdate, o) })
		}
		return nil
	})
	if err != nil {
		return err
	}
	evs = append([]event{func(ctx context.Context, nt Notifier) { nt.SecurityGroupChanged(ctx, OpDelete, g) }}, evs...)
	s.fire(ctx, evs)
	return nil
}

// GetSecurityGroupRule returns a rule of one of the caller's groups.
// Faults: Unauthorized, NotFound.
func (s *Service) GetSecurityGroupRule(ctx context.Context, id string) (*SecurityGroupRule, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.st.read(ctx).rule(id)
	if err != nil {
		return nil, err
	}
	if !s.canSeeOwned(c, r.ProjectID, "get_security_group_rule") {
		return nil, errSecurityGroupRuleNotFound(id)
	}
	return r, nil
}

// ListSecurityGroupRules lists the rules of the caller's groups (all for
// an admin) that match o. Faults: Unauthorized, Invalid, NotFound (marker).
func (s *Service) ListSecurityGroupRules(ctx context.Context, o ListOptions) ([]SecurityGroupRule, bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := s.ensureCallerDefault(ctx, c); err != nil {
		return nil, false, err
	}
	return listOwned(s, s.st.read(ctx), c, ruleSpec, o, (*q).rules,
		func(x *SecurityGroupRule) string { return x.ProjectID }, "get_security_group_rule")
}

// CreateSecurityGroupRule adds a rule to a group of the caller's project.
// A rule meaning the same as an existing one ("tcp" and "6",
// "0.0.0.0/0" and no prefix) is refused. Faults: Unauthorized, Forbidden,
// NotFound (group, remote group), Invalid (direction, ethertype, protocol,
// ports, prefix), Conflict (SecurityGroupRuleExists, OverQuota).
func (s *Service) CreateSecurityGroupRule(ctx context.Context, in SecurityGroupRuleCreate) (*SecurityGroupRule, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := normalizeRule(in)
	if err != nil {
		return nil, err
	}
	var g *SecurityGroup
	err = s.st.write(ctx, func(x *q) error {
		var err error
		if g, err = s.visibleGroup(x, c, in.SecurityGroupID); err != nil {
			return err
		}
		if err := s.enforce(c, "create_security_group_rule", ownedTarget(g.ProjectID)); err != nil {
			return err
		}
		if r.RemoteGroupID != "" && r.RemoteGroupID != g.ID {
			if _, err := s.visibleGroup(x, c, r.RemoteGroupID); err != nil {
				return err
			}
		}
		if err := s.checkQuota(x, g.ProjectID, "security_group_rule", 1); err != nil {
			return err
		}
		now := s.now()
		r.ID, r.ProjectID, r.RevisionNumber, r.CreatedAt, r.UpdatedAt = newID(), g.ProjectID, 1, now, now
		if err := x.insertRule(r, ruleFingerprint(r)); err != nil {
			return err
		}
		g.Rules = append(g.Rules, *r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.fire(ctx, []event{func(ctx context.Context, nt Notifier) { nt.SecurityGroupChanged(ctx, OpUpdate, g) }})
	return r, nil
}

// DeleteSecurityGroupRule removes a rule. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) DeleteSecurityGroupRule(ctx context.Context, id string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	var g *SecurityGroup
	err = s.st.write(ctx, func(x *q) error {
		r, err := x.rule(id)
		if err != nil {
			return err
		}
		if !s.canSeeOwned(c, r.ProjectID, "get_security_group_rule") {
			return errSecurityGroupRuleNotFound(id)
		}
		if err := s.enforce(c, "delete_security_group_rule", ownedTarget(r.ProjectID)); err != nil {
			return err
		}
		if err := x.deleteRule(id); err != nil {
			return err
		}
		g, err = x.securityGroup(r.SecurityGroupID)
		return err
	})
	if err != nil {
		return err
	}
	s.fire(ctx, []event{func(ctx context.Context, nt Notifier) { nt.SecurityGroupChanged(ctx, OpUpdate, g) }})
	return nil
}

// normalizeRule validates a rule the way Neutron's API and plugin do.
func normalizeRule(in SecurityGroupRuleCreate) (*SecurityGroupRule, error) {
	r := &SecurityGroupRule{SecurityGroupID: in.SecurityGroupID, RemoteGroupID: in.RemoteGroupID,
		PortRangeMin: in.PortRangeMin, PortRangeMax: in.PortRangeMax, Description: in.Description}
	if err := checkText("description", in.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	switch in.Direction {
	case DirIngress, DirEgress:
		r.Direction = in.Direction
	default:
		return nil, fault400("HTTPBadRequest", "Invalid input for direction. Reason: '%s' is not in ['ingress', 'egress'].", in.Direction)
	}
	switch strings.ToLower(in.Ethertype) {
	case "", "ipv4":
		r.Ethertype = EtherIPv4
	case "ipv6":
		r.Ethertype = EtherIPv6
	default:
		return nil, fault400("HTTPBadRequest", "Invalid input for ethertype. Reason: '%s' is not in ['IPv4', 'IPv6'].", in.Ethertype)
	}
	proto := -1
	switch p := strings.ToLower(in.Protocol); {
	case p == "" || p == "any":
	case protocolNumbers[p] != 0 || p == "hopopt":
		r.Protocol, proto = p, protocolNumbers[p]
	default:
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 {
			return nil, fault400("SecurityGroupRuleInvalidProtocol",
				"Security group rule protocol %s not supported. Only protocol values %s and integer representations [0 to 255] are supported.",
				in.Protocol, protocolList())
		}
		r.Protocol, proto = strconv.Itoa(n), n
	}
	if proto == 58 && r.Ethertype == EtherIPv4 {
		return nil, fault400("SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype %s for protocol %s.", r.Ethertype, r.Protocol)
	}
	if err := checkRulePorts(r, proto); err != nil {
		return nil, err
	}
	if in.RemoteIPPrefix != "" {
		if in.RemoteGroupID != "" {
			return nil, fault400("SecurityGroupRemoteGroupAndRemoteIpPrefix", "Only remote_ip_prefix or remote_group_id may be provided.")
		}
		p, ok := parseAnyPrefix(in.RemoteIPPrefix, true)
		if !ok {
			return nil, fault400("InvalidCIDR", "Invalid CIDR %s given as IP prefix.", in.RemoteIPPrefix)
		}
		if p.Addr().Is4() != (r.Ethertype == EtherIPv4) {
			return nil, fault400("SecurityGroupRuleParameterConflict", "Conflicting value ethertype %s for CIDR %s", r.Ethertype, in.RemoteIPPrefix)
		}
		r.RemoteIPPrefix = p.String()
	}
	return r, nil
}

// checkRulePorts validates the port range for the protocol: ports for
// TCP-like protocols (both ends, 1-65535, min <= max), type and code for
// ICMP (0-255, a code only with a type), nothing for the rest.
func checkRulePorts(r *SecurityGroupRule, proto int) error {
	lo, hi := r.PortRangeMin, r.PortRangeMax
	if lo == nil && hi == nil {
		return nil
	}
	for _, v := range []*int{lo, hi} {
		if v != nil && (*v < 0 || *v > 65535) {
			return fault400("SecurityGroupInvalidPortValue", "Invalid value for port %d.", *v)
		}
	}
	switch {
	case proto < 0:
		return fault400("SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given.")
	case portProtocols[proto]:
		if (lo != nil && *lo == 0) || (hi != nil && *hi == 0) {
			return fault400("SecurityGroupInvalidPortValue", "Invalid value for port 0.")
		}
		if lo == nil || hi == nil || *lo > *hi {
			return fault400("SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
		}
	case proto == 1 || proto == 58:
		if lo == nil {
			return fault400("SecurityGroupMissingIcmpType",
				"ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", *hi)
		}
		if *lo > 255 {
			return fault400("SecurityGroupInvalidIcmpValue", "Invalid value for ICMP type (port_range_min) %d. It must be 0 to 255.", *lo)
		}
		if hi != nil && *hi > 255 {
			return fault400("SecurityGroupInvalidIcmpValue", "Invalid value for ICMP code (port_range_max) %d. It must be 0 to 255.", *hi)
		}
	default:
		return fault400("SecurityGroupInvalidProtocolForPort",
			"Invalid protocol %s for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.", r.Protocol)
	}
	return nil
}

func protocolList() string {
	return "[None, ah, dccp, egp, esp, gre, hopopt, icmp, igmp, ipip, ipv6-encap, ipv6-frag, ipv6-icmp, icmpv6, " +
		"ipv6-nonxt, ipv6-opts, ipv6-route, ospf, pgm, rsvp, sctp, tcp, udp, udplite, vrrp]"
}

// ruleNumber is a rule's protocol as a number, -1 for any; "icmp" on an
// IPv6 rule means ICMPv6, as Neutron's firewall drivers read it.
func ruleNumber(r *SecurityGroupRule) int {
	if r.Protocol == "" {
		return -1
	}
	n, ok := protocolNumbers[r.Protocol]
	if !ok {
		n, _ = strconv.Atoi(r.Protocol)
	}
	if n == 1 && r.Ethertype == EtherIPv6 {
		n = 58
	}
	return n
}

// ruleFingerprint is a rule's meaning in canonical form: the protocol as a
// number, the any-address prefix as none.
func ruleFingerprint(r *SecurityGroupRule) string {
	prefix := r.RemoteIPPrefix
	if prefix == "0.0.0.0/0" || prefix == "::/0" {
		prefix = ""
	}
	i := func(p *int) string {
		if p == nil {
			return "-"
		}
		return strconv.Itoa(*p)
	}
	return fmt.Sprintf("%s|%s|%d|%s|%s|%s|%s", r.Direction, r.Ethertype, ruleNumber(r), i(r.PortRangeMin), i(r.PortRangeMax),
		prefix, r.RemoteGroupID)
}
