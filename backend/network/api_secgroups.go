package network

// Neutron's /v2.0/security-groups and /v2.0/security-group-rules.

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
)

func (a *apiHandler) securityGroupRoutes(r chi.Router) {
	r.Get("/v2.0/security-groups", a.listSecurityGroups)
	r.Post("/v2.0/security-groups", a.createSecurityGroup)
	r.Get("/v2.0/security-groups/{id}", a.getSecurityGroup)
	r.Put("/v2.0/security-groups/{id}", a.updateSecurityGroup)
	r.Delete("/v2.0/security-groups/{id}", a.deleteSecurityGroup)
	r.Get("/v2.0/security-group-rules", a.listSecurityGroupRules)
	r.Post("/v2.0/security-group-rules", a.createSecurityGroupRule)
	r.Get("/v2.0/security-group-rules/{id}", a.getSecurityGroupRule)
	r.Delete("/v2.0/security-group-rules/{id}", a.deleteSecurityGroupRule)
}

var (
	sgCreateAttrs   = []string{"name", "description", "stateful", "tenant_id", "project_id"}
	sgUpdateAttrs   = []string{"name", "description", "stateful"}
	sgReadOnlyAttrs = []string{"id", "tenant_id", "project_id", "security_group_rules", "created_at", "updated_at", "revision_number"}
	ruleCreateAttrs = []string{"security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
		"remote_ip_prefix", "remote_group_id", "description", "tenant_id", "project_id"}
)

func ruleJSON(sr *SecurityGroupRule) map[string]any {
	return apiStandard(map[string]any{
		"security_group_id": sr.SecurityGroupID,
		"direction":         sr.Direction,
		"ethertype":         sr.Ethertype,
		"protocol":          apiNullable(sr.Protocol),
		"port_range_min":    apiNullInt(sr.PortRangeMin),
		"port_range_max":    apiNullInt(sr.PortRangeMax),
		"remote_ip_prefix":  apiNullable(sr.RemoteIPPrefix),
		"normalized_cidr":   apiNullable(sr.RemoteIPPrefix),
		"remote_group_id":   apiNullable(sr.RemoteGroupID),
	}, sr.ID, sr.ProjectID, sr.Description, sr.RevisionNumber, sr.CreatedAt, sr.UpdatedAt)
}

func securityGroupJSON(g *SecurityGroup) map[string]any {
	rules := make([]any, len(g.Rules))
	for i := range g.Rules {
		rules[i] = ruleJSON(&g.Rules[i])
	}
	return apiStandard(map[string]any{
		"name":                 g.Name,
		"stateful":             g.Stateful,
		"security_group_rules": rules,
	}, g.ID, g.ProjectID, g.Description, g.RevisionNumber, g.CreatedAt, g.UpdatedAt)
}

func (a *apiHandler) listSecurityGroups(w http.ResponseWriter, r *http.Request) {
	serveList(a, w, r, "security_groups", a.s.ListSecurityGroups,
		func(x *SecurityGroup) map[string]any { return securityGroupJSON(x) },
		func(x *SecurityGroup) string { return x.ID })
}

func (a *apiHandler) getSecurityGroup(w http.ResponseWriter, r *http.Request) {
	g, err := a.s.GetSecurityGroup(r.Context(), pathID(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "security_group", securityGroupJSON(g))
}

func (a *apiHandler) createSecurityGroup(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "security_group", sgCreateAttrs, nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in SecurityGroupCreate
	if err := collect(
		func() (err error) { in.ProjectID, err = b.project(); return },
		func() (err error) { in.Name, err = b.str("name"); return },
		func() (err error) { in.Description, err = b.str("description"); return },
		func() (err error) { in.Stateful, err = b.boolPtr("stateful"); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	g, err := a.s.CreateSecurityGroup(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusCreated, "security_group", securityGroupJSON(g))
}

func (a *apiHandler) updateSecurityGroup(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "security_group", sgUpdateAttrs, sgReadOnlyAttrs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var u SecurityGroupUpdate
	if err := collect(
		func() (err error) { u.Name, err = b.strPtr("name"); return },
		func() (err error) { u.Description, err = b.strPtr("description"); return },
		func() (err error) { u.Stateful, err = b.boolPtr("stateful"); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	g, err := a.s.UpdateSecurityGroup(r.Context(), pathID(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "security_group", securityGroupJSON(g))
}

func (a *apiHandler) deleteSecurityGroup(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteSecurityGroup(r.Context(), pathID(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) listSecurityGroupRules(w http.ResponseWriter, r *http.Request) {
	serveList(a, w, r, "security_group_rules", a.s.ListSecurityGroupRules,
		func(x *SecurityGroupRule) map[string]any { return ruleJSON(x) },
		func(x *SecurityGroupRule) string { return x.ID })
}

func (a *apiHandler) getSecurityGroupRule(w http.ResponseWriter, r *http.Request) {
	sr, err := a.s.GetSecurityGroupRule(r.Context(), pathID(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "security_group_rule", ruleJSON(sr))
}

func (a *apiHandler) createSecurityGroupRule(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "security_group_rule", ruleCreateAttrs, nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in SecurityGroupRuleCreate
	if err := collect(
		func() (err error) { _, err = b.project(); return },
		func() (err error) { in.SecurityGroupID, err = b.str("security_group_id"); return },
		func() (err error) { in.Direction, err = b.str("direction"); return },
		func() (err error) { in.Ethertype, err = b.str("ethertype"); return },
		func() (err error) { in.Protocol, err = b.protocol(); return },
		func() (err error) { in.PortRangeMin, err = b.intPtr("port_range_min"); return },
		func() (err error) { in.PortRangeMax, err = b.intPtr("port_range_max"); return },
		func() (err error) { in.RemoteIPPrefix, err = b.str("remote_ip_prefix"); return },
		func() (err error) { in.RemoteGroupID, err = b.str("remote_group_id"); return },
		func() (err error) { in.Description, err = b.str("description"); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	if in.SecurityGroupID == "" {
		a.fail(w, r, apiBad("Failed to parse request. Required attribute 'security_group_id' not specified"))
		return
	}
	sr, err := a.s.CreateSecurityGroupRule(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusCreated, "security_group_rule", ruleJSON(sr))
}

// protocol reads a rule's protocol, which clients send as a name, a
// number or a numeric string.
func (b apiBody) protocol() (string, error) {
	if n, err := b.intPtr("protocol"); err == nil && n != nil {
		return strconv.Itoa(*n), nil
	}
	return b.str("protocol")
}

func (a *apiHandler) deleteSecurityGroupRule(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteSecurityGroupRule(r.Context(), pathID(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
