package web

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// secGroupList is GET /project/security-groups.
func (s *Server) secGroupList(w http.ResponseWriter, r *http.Request) {
	gs, _, err := s.nets.ListSecurityGroups(r.Context(), projectOnly(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	slices.SortFunc(gs, func(a, b network.SecurityGroup) int { return byName(a.Name, b.Name) })
	l := views.SecurityGroupList{CanWrite: canWrite(viewerFrom(r))}
	for _, g := range gs {
		l.Rows = append(l.Rows, views.SecurityGroupRow{ID: g.ID, Name: g.Name, Description: g.Description, Rules: len(g.Rules)})
	}
	s.page(w, r, http.StatusOK, "Security groups", views.NavSecurityGroups, views.SecurityGroupsPage(l))
}

func (s *Server) renderSecGroupForm(w http.ResponseWriter, r *http.Request, status int, f views.SecurityGroupForm) {
	f.Cancel = views.SecurityGroupsURL
	s.formPage(w, r, status, "Create security group", views.NavSecurityGroups, views.SecurityGroupsURL, "Security groups", views.SecurityGroupFormView(f))
}

// secGroupNew is GET /project/security-groups/new.
func (s *Server) secGroupNew(w http.ResponseWriter, r *http.Request) {
	s.renderSecGroupForm(w, r, http.StatusOK, views.SecurityGroupForm{})
}

// secGroupCreate is POST /project/security-groups; the new group's page,
// where its rules are added, comes next.
func (s *Server) secGroupCreate(w http.ResponseWriter, r *http.Request) {
	f := views.SecurityGroupForm{Name: field(r, "name"), Description: field(r, "description")}
	requireName(&f.Form, f.Name, "security group")
	if !f.Valid() {
		s.renderSecGroupForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	g, err := s.nets.CreateSecurityGroup(r.Context(), network.SecurityGroupCreate{Name: f.Name, Description: f.Description})
	if err != nil {
		err = inWords(err, "create security groups")
		s.formFault(r, &f.Form, err, "name", "description")
		s.renderSecGroupForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.Path(views.SecurityGroupsURL, g.ID), "Security group "+quoted(f.Name)+" created.")
}

// ruleRow maps a rule to its row, naming a remote group when it can.
func ruleRow(rl *network.SecurityGroupRule, groups map[string]string) views.SGRuleRow {
	row := views.SGRuleRow{ID: rl.ID, Direction: rl.Direction, Ethertype: rl.Ethertype, Protocol: rl.Protocol}
	if row.Protocol == "" {
		row.Protocol = "any"
	}
	icmp := rl.Protocol == "icmp" || rl.Protocol == "1" || rl.Protocol == "ipv6-icmp" || rl.Protocol == "icmpv6" || rl.Protocol == "58"
	switch {
	case rl.PortRangeMin == nil:
		row.Ports = "any"
	case icmp:
		row.Ports = "type " + strconv.Itoa(*rl.PortRangeMin)
		if rl.PortRangeMax != nil {
			row.Ports += " code " + strconv.Itoa(*rl.PortRangeMax)
		}
	case rl.PortRangeMax == nil || *rl.PortRangeMax == *rl.PortRangeMin:
		row.Ports = strconv.Itoa(*rl.PortRangeMin)
	default:
		row.Ports = strconv.Itoa(*rl.PortRangeMin) + "–" + strconv.Itoa(*rl.PortRangeMax)
	}
	switch {
	case rl.RemoteGroupID != "":
		row.Remote = "group " + netLabel(groups[rl.RemoteGroupID], rl.RemoteGroupID)
	case rl.RemoteIPPrefix != "":
		row.Remote = rl.RemoteIPPrefix
	case rl.Ethertype == network.EtherIPv6:
		row.Remote = "::/0"
	default:
		row.Remote = "0.0.0.0/0"
	}
	return row
}

func choiceOptions(values []string, labels []string, selected string) []views.Option {
	out := make([]views.Option, len(values))
	for i, v := range values {
		out[i] = views.Option{Value: v, Label: labels[i], Selected: v == selected}
	}
	return out
}

// secGroupDetail is GET /project/security-groups/{id}.
func (s *Server) secGroupDetail(w http.ResponseWriter, r *http.Request) {
	s.renderSecGroupDetail(w, r, http.StatusOK, urlID(r), views.SGRuleForm{Direction: network.DirIngress, Ethertype: network.EtherIPv4, Protocol: "tcp"})
}

// renderSecGroupDetail renders a group's page with the add-rule form as f;
// an htmx post of that form gets the form alone back.
func (s *Server) renderSecGroupDetail(w http.ResponseWriter, r *http.Request, status int, id string, f views.SGRuleForm) {
	ctx := r.Context()
	g, err := s.nets.GetSecurityGroup(ctx, id)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	gs, _, err := s.nets.ListSecurityGroups(ctx, projectOnly(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	names := map[string]string{}
	f.Groups = []views.Option{{Value: "", Label: "None (use the CIDR)", Selected: f.RemoteGroup == ""}}
	slices.SortFunc(gs, func(a, b network.SecurityGroup) int { return byName(a.Name, b.Name) })
	for _, o := range gs {
		names[o.ID] = o.Name
		f.Groups = append(f.Groups, views.Option{Value: o.ID, Label: netLabel(o.Name, o.ID), Selected: o.ID == f.RemoteGroup})
	}
	f.Directions = choiceOptions([]string{network.DirIngress, network.DirEgress}, []string{"Ingress (in)", "Egress (out)"}, f.Direction)
	f.Ethertypes = choiceOptions([]string{network.EtherIPv4, network.EtherIPv6}, []string{"IPv4", "IPv6"}, f.Ethertype)
	f.Protocols = choiceOptions([]string{"tcp", "udp", "icmp", "ipv6-icmp", ""}, []string{"TCP", "UDP", "ICMP", "ICMPv6", "Any"}, f.Protocol)
	if r.Method == http.MethodPost && isHX(r) {
		s.render(w, r, status, views.SGRuleFormView(g.ID, f))
		return
	}
	d := views.SecurityGroupDetail{ID: g.ID, Name: g.Name, Description: g.Description, Rule: f, CanWrite: canWrite(viewerFrom(r))}
	rules := slices.Clone(g.Rules)
	slices.SortStableFunc(rules, func(a, b network.SecurityGroupRule) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for i := range rules {
		d.Rules = append(d.Rules, ruleRow(&rules[i], names))
	}
	s.page(w, r, status, netLabel(g.Name, g.ID), views.NavSecurityGroups, views.SecurityGroupDetailPage(d))
}

// portNumber reads an optional port (or ICMP type/code) field.
func portNumber(f *views.SGRuleForm, name, value string) *int {
	if value == "" {
		return nil
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 0 || n > 65535 {
		f.SetError(name, "Enter a number from 0 to 65535.")
		return nil
	}
	return &n
}

// secGroupRuleCreate is POST /project/security-groups/{id}/rules.
func (s *Server) secGroupRuleCreate(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	f := views.SGRuleForm{Direction: field(r, "direction"), Ethertype: field(r, "ethertype"), Protocol: field(r, "protocol"),
		PortMin: field(r, "port_min"), PortMax: field(r, "port_max"), RemoteCIDR: field(r, "remote_cidr"), RemoteGroup: field(r, "remote_group")}
	in := network.SecurityGroupRuleCreate{SecurityGroupID: id, Direction: f.Direction, Ethertype: f.Ethertype, Protocol: f.Protocol,
		RemoteIPPrefix: f.RemoteCIDR, RemoteGroupID: f.RemoteGroup}
	in.PortRangeMin = portNumber(&f, "port_min", f.PortMin)
	in.PortRangeMax = portNumber(&f, "port_max", f.PortMax)
	// A single port is the common case: "22" alone means 22 to 22. ICMP
	// keeps a lone type, which means any code.
	if in.PortRangeMax == nil && in.PortRangeMin != nil && (f.Protocol == "tcp" || f.Protocol == "udp") {
		in.PortRangeMax = in.PortRangeMin
	}
	if f.RemoteCIDR != "" && f.RemoteGroup != "" {
		f.SetError("remote_cidr", "Give a remote CIDR or a remote group, not both.")
	}
	if !f.Valid() {
		s.renderSecGroupDetail(w, r, http.StatusUnprocessableEntity, id, f)
		return
	}
	if _, err := s.nets.CreateSecurityGroupRule(r.Context(), in); err != nil {
		err = inWords(err, "change this security group's rules")
		s.formFault(r, &f.Form, err)
		s.renderSecGroupDetail(w, r, formStatus(err), id, f)
		return
	}
	s.done(w, r, views.Path(views.SecurityGroupsURL, id), "Rule added.")
}

// rulePresets are the one-click ingress rules, each from anywhere.
var rulePresets = map[string]struct {
	label    string
	protocol string
	port     int // 0 for none
}{
	"ssh":   {"SSH", "tcp", 22},
	"icmp":  {"ICMP", "icmp", 0},
	"http":  {"HTTP", "tcp", 80},
	"https": {"HTTPS", "tcp", 443},
}

// secGroupRulePreset is POST /project/security-groups/{id}/rules/preset/{preset}.
func (s *Server) secGroupRulePreset(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	back := views.Path(views.SecurityGroupsURL, id)
	p, ok := rulePresets[chi.URLParam(r, "preset")]
	if !ok {
		s.notFound(w, r)
		return
	}
	in := network.SecurityGroupRuleCreate{SecurityGroupID: id, Direction: network.DirIngress, Ethertype: network.EtherIPv4,
		Protocol: p.protocol, RemoteIPPrefix: "0.0.0.0/0"}
	if p.port != 0 {
		port := p.port
		in.PortRangeMin, in.PortRangeMax = &port, &port
	}
	if _, err := s.nets.CreateSecurityGroupRule(r.Context(), in); err != nil {
		s.failed(w, r, back, inWords(err, "change this security group's rules"))
		return
	}
	s.done(w, r, back, p.label+" allowed from anywhere.")
}

// secGroupRuleDelete is POST /project/security-groups/{id}/rules/{rule}/delete.
func (s *Server) secGroupRuleDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	back := views.Path(views.SecurityGroupsURL, id)
	rl, err := s.nets.GetSecurityGroupRule(r.Context(), chi.URLParam(r, "rule"))
	if err == nil && rl.SecurityGroupID != id {
		err = fault.NotFoundf("The security group has no such rule.")
	}
	if err == nil {
		err = s.nets.DeleteSecurityGroupRule(r.Context(), rl.ID)
	}
	if err != nil {
		s.failed(w, r, back, inWords(err, "change this security group's rules"))
		return
	}
	s.done(w, r, back, "Rule deleted.")
}

func secGroupDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.SecurityGroupsURL, id, "delete"), Cancel: views.SecurityGroupsURL},
		Title:   "Delete security group",
		Lead:    "Delete the security group",
		Subject: name,
		Detail:  "A group that ports still use cannot be deleted.",
		Button:  "Delete security group",
		Danger:  true,
	}
}

// secGroupDeleteConfirm is GET /project/security-groups/{id}/delete.
func (s *Server) secGroupDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	g, err := s.nets.GetSecurityGroup(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavSecurityGroups, "Security groups", secGroupDeleteConfirmation(g.ID, netLabel(g.Name, g.ID)))
}

// secGroupDelete is POST /project/security-groups/{id}/delete.
func (s *Server) secGroupDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	name := id
	if g, err := s.nets.GetSecurityGroup(r.Context(), id); err == nil {
		name = netLabel(g.Name, g.ID)
	}
	if err := s.nets.DeleteSecurityGroup(r.Context(), id); err != nil {
		s.confirmFailed(w, r, views.NavSecurityGroups, "Security groups", secGroupDeleteConfirmation(id, name), inWords(err, "delete this security group"))
		return
	}
	s.done(w, r, views.SecurityGroupsURL, "Security group "+quoted(name)+" deleted.")
}
