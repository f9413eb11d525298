package identity_test

import "testing"

func TestAPIImpliedRoles(t *testing.T) {
	e := newAPIEnv(t)
	admin, member, reader := e.roleIDs["admin"], e.roleIDs["member"], e.roleIDs["reader"]
	custom := e.do("POST", "/v3/roles", e.admin, map[string]any{"role": map[string]any{"name": "auditor"}}).
		want(201).obj("role")["id"].(string)

	// Bootstrap's rules are listed, grouped by prior role.
	infs := e.do("GET", "/v3/role_inferences", e.admin, nil).want(200).list("role_inferences")
	found := false
	for _, inf := range infs {
		prior := inf["prior_role"].(map[string]any)
		if prior["id"] == admin {
			for _, imp := range inf["implies"].([]any) {
				if imp.(map[string]any)["id"] == member {
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatalf("role_inferences lacks admin -> member: %v", infs)
	}

	// Create, read, check, list for one prior role, delete.
	created := e.do("PUT", "/v3/roles/"+custom+"/implies/"+reader, e.admin, nil).want(201).obj("role_inference")
	if created["prior_role"].(map[string]any)["name"] != "auditor" || created["implies"].(map[string]any)["id"] != reader {
		t.Fatalf("created rule = %v", created)
	}
	e.do("GET", "/v3/roles/"+custom+"/implies/"+reader, e.admin, nil).want(200)
	e.do("HEAD", "/v3/roles/"+custom+"/implies/"+reader, e.admin, nil).want(204)
	of := e.do("GET", "/v3/roles/"+custom+"/implies", e.admin, nil).want(200).obj("role_inference")
	if imps := of["implies"].([]any); len(imps) != 1 {
		t.Fatalf("implies of auditor = %v", of)
	}
	e.do("DELETE", "/v3/roles/"+custom+"/implies/"+reader, e.admin, nil).want(204)
	e.do("HEAD", "/v3/roles/"+custom+"/implies/"+reader, e.admin, nil).want(404)
	e.do("GET", "/v3/roles/"+custom+"/implies/"+reader, e.admin, nil).wantFault(404)
	e.do("GET", "/v3/roles/no-such-role/implies", e.admin, nil).wantFault(404)

	// A member may not change the rules.
	_, _, tok := e.member("implied-member")
	e.do("PUT", "/v3/roles/"+custom+"/implies/"+reader, tok, nil).wantFault(403)
	e.do("GET", "/v3/role_inferences", "", nil).wantFault(401)
}
