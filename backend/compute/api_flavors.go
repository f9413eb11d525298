package compute

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) flavorRoutes(r chi.Router) {
	r.Get("/flavors", a.listFlavors(false))
	r.Get("/flavors/detail", a.listFlavors(true))
	r.Post("/flavors", a.createFlavor)
	r.Get("/flavors/{id}", a.showFlavor)
	r.Put("/flavors/{id}", a.updateFlavor)
	r.Delete("/flavors/{id}", a.deleteFlavor)
	r.Get("/flavors/{id}/os-extra_specs", a.listExtraSpecs)
	r.Post("/flavors/{id}/os-extra_specs", a.createExtraSpecs)
	r.Get("/flavors/{id}/os-extra_specs/{key}", a.showExtraSpec)
	r.Put("/flavors/{id}/os-extra_specs/{key}", a.updateExtraSpec)
	r.Delete("/flavors/{id}/os-extra_specs/{key}", a.deleteExtraSpec)
	r.Get("/flavors/{id}/os-flavor-access", a.listFlavorAccess)
	r.Post("/flavors/{id}/action", a.flavorAction)
}

// flavorView is a flavor in the detail shape of microversion v.
func (a *apiHandler) flavorView(r *http.Request, f *Flavor, detail bool) map[string]any {
	v := version(r)
	m := map[string]any{"id": f.ID, "name": f.Name, "links": a.links(r, "flavors", f.ID)}
	if v.atLeast(55) {
		m["description"] = nullablePtr(f.Description)
	}
	if !detail {
		return m
	}
	m["ram"], m["disk"], m["vcpus"] = f.MemoryMB, f.RootGB, f.VCPUs
	m["OS-FLV-EXT-DATA:ephemeral"], m["OS-FLV-DISABLED:disabled"] = f.EphemeralGB, f.Disabled
	m["os-flavor-access:is_public"], m["rxtx_factor"] = f.IsPublic, f.RXTXFactor
	if f.SwapMB == 0 && !v.atLeast(75) {
		m["swap"] = ""
	} else {
		m["swap"] = f.SwapMB
	}
	if v.atLeast(61) && a.s.allowed(r.Context(), "os_compute_api:os-flavor-extra-specs:index", nil) {
		specs := f.ExtraSpecs
		if specs == nil {
			specs = map[string]string{}
		}
		m["extra_specs"] = specs
	}
	return m
}

func (a *apiHandler) listFlavors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var fl FlavorFilter
		var err error
		if fl.Limit, err = queryInt(r, "limit"); err != nil {
			a.fail(w, r, err)
			return
		}
		fl.Marker, fl.SortKey, fl.SortDir, fl.Name = q.Get("marker"), q.Get("sort_key"), q.Get("sort_dir"), q.Get("name")
		for _, p := range []struct {
			name string
			dst  *int64
		}{{"minRam", &fl.MinRAM}, {"minDisk", &fl.MinDisk}} {
			if s := q.Get(p.name); s != "" {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					a.fail(w, r, fault.Invalidf("Invalid %s filter [%s]", p.name, s))
					return
				}
				*p.dst = n
			}
		}
		if s := q.Get("is_public"); s != "" {
			switch strings.ToLower(s) {
			case "none":
				fl.AllVisibility = true
			case "true", "1", "yes", "t", "on", "y":
				t := true
				fl.IsPublic = &t
			case "false", "0", "no", "f", "off", "n":
				f := false
				fl.IsPublic = &f
			default:
				a.fail(w, r, fault.Invalidf("Invalid is_public filter [%s]", s))
				return
			}
		}
		fs, err := a.s.ListFlavors(r.Context(), fl)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out := make([]any, 0, len(fs))
		for i := range fs {
			out = append(out, a.flavorView(r, &fs[i], detail))
		}
		body := map[string]any{"flavors": out}
		coll := "flavors"
		if detail {
			coll = "flavors/detail"
		}
		if len(fs) > 0 {
			if l := a.nextLink(r, coll, len(fs), fl.Limit, fs[len(fs)-1].ID); l != nil {
				body["flavors_links"] = l
			}
		}
		rest.JSON(w, http.StatusOK, body)
	}
}

func (a *apiHandler) showFlavor(w http.ResponseWriter, r *http.Request) {
	f, err := a.s.GetFlavor(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"flavor": a.flavorView(r, f, true)})
}

func (a *apiHandler) createFlavor(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Flavor *struct {
			Name        *string          `json:"name"`
			ID          *json.RawMessage `json:"id"`
			RAM         *int64           `json:"ram"`
			VCPUs       *int64           `json:"vcpus"`
			Disk        *int64           `json:"disk"`
			Ephemeral   int64            `json:"OS-FLV-EXT-DATA:ephemeral"`
			Swap        int64            `json:"swap"`
			RXTX        float64          `json:"rxtx_factor"`
			IsPublic    *bool            `json:"os-flavor-access:is_public"`
			Description *string          `json:"description"`
		} `json:"flavor"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.Flavor != nil, "flavor"); err != nil {
		a.fail(w, r, err)
		return
	}
	b := body.Flavor
	for _, req := range []struct {
		ok   bool
		name string
	}{{b.Name != nil, "name"}, {b.RAM != nil, "ram"}, {b.VCPUs != nil, "vcpus"}, {b.Disk != nil, "disk"}} {
		if !req.ok {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute flavor. Value: %s. '%s' is a required property", "{...}", req.name))
			return
		}
	}
	f := Flavor{Name: *b.Name, MemoryMB: *b.RAM, VCPUs: *b.VCPUs, RootGB: *b.Disk, EphemeralGB: b.Ephemeral,
		SwapMB: b.Swap, RXTXFactor: b.RXTX, IsPublic: true}
	if b.IsPublic != nil {
		f.IsPublic = *b.IsPublic
	}
	if b.ID != nil && string(*b.ID) != "null" {
		var s string
		if err := json.Unmarshal(*b.ID, &s); err != nil {
			var n json.Number
			if err := json.Unmarshal(*b.ID, &n); err != nil {
				a.fail(w, r, fault.Invalidf("Invalid input for field/attribute id. Value: %s.", *b.ID))
				return
			}
			s = n.String()
		}
		f.ID = s
	}
	if version(r).atLeast(55) {
		f.Description = b.Description
	}
	out, err := a.s.CreateFlavor(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"flavor": a.flavorView(r, out, true)})
}

func (a *apiHandler) updateFlavor(w http.ResponseWriter, r *http.Request) {
	if !version(r).atLeast(55) {
		a.methodNotAllowed(w, r)
		return
	}
	var body struct {
		Flavor *struct {
			Description *string `json:"description"`
		} `json:"flavor"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.Flavor != nil, "flavor"); err != nil {
		a.fail(w, r, err)
		return
	}
	f, err := a.s.UpdateFlavorDescription(r.Context(), chi.URLParam(r, "id"), body.Flavor.Description)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"flavor": a.flavorView(r, f, true)})
}

func (a *apiHandler) deleteFlavor(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteFlavor(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *apiHandler) listExtraSpecs(w http.ResponseWriter, r *http.Request) {
	specs, err := a.s.FlavorExtraSpecs(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
}

// specValue reads an extra spec value: Nova accepts strings, numbers and
// booleans and stores them as text.
func specValue(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case float64, bool:
		return strings.Trim(string(raw), " "), nil
	default:
		_ = x
		return "", fault.Invalidf("Invalid input for field/attribute extra_specs. Values must be strings, numbers or booleans.")
	}
}

func decodeSpecs(raw map[string]json.RawMessage) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range raw {
		s, err := specValue(v)
		if err != nil {
			return nil, fault.Invalidf("Invalid input for field/attribute extra_specs. Value of '%s' is not a string.", k)
		}
		out[k] = s
	}
	return out, nil
}

func (a *apiHandler) createExtraSpecs(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ExtraSpecs map[string]json.RawMessage `json:"extra_specs"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.ExtraSpecs != nil, "extra_specs"); err != nil {
		a.fail(w, r, err)
		return
	}
	specs, err := decodeSpecs(body.ExtraSpecs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out, err := a.s.SetFlavorExtraSpecs(r.Context(), chi.URLParam(r, "id"), specs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"extra_specs": out})
}

func (a *apiHandler) showExtraSpec(w http.ResponseWriter, r *http.Request) {
	key := chi.URLParam(r, "key")
	v, err := a.s.FlavorExtraSpec(r.Context(), chi.URLParam(r, "id"), key)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{key: v})
}

func (a *apiHandler) updateExtraSpec(w http.ResponseWriter, r *http.Request) {
	key := chi.URLParam(r, "key")
	var body map[string]json.RawMessage
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	raw, ok := body[key]
	if !ok || len(body) != 1 {
		a.fail(w, r, fault.Invalidf("Request body and URI mismatch"))
		return
	}
	v, err := specValue(raw)
	if err != nil {
		a.fail(w, r, fault.Invalidf("Invalid input for field/attribute %s.", key))
		return
	}
	if err := a.s.UpdateFlavorExtraSpec(r.Context(), chi.URLParam(r, "id"), key, v); err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{key: v})
}

func (a *apiHandler) deleteExtraSpec(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteFlavorExtraSpec(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "key")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func flavorAccessView(id string, projects []string) map[string]any {
	out := make([]any, 0, len(projects))
	for _, p := range projects {
		out = append(out, map[string]any{"flavor_id": id, "tenant_id": p})
	}
	return map[string]any{"flavor_access": out}
}

func (a *apiHandler) listFlavorAccess(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	ps, err := a.s.FlavorAccess(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, flavorAccessView(id, ps))
}

func (a *apiHandler) flavorAction(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var body struct {
		Add *struct {
			Tenant string `json:"tenant"`
		} `json:"addTenantAccess"`
		Remove *struct {
			Tenant string `json:"tenant"`
		} `json:"removeTenantAccess"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	var ps []string
	var err error
	switch {
	case body.Add != nil:
		ps, err = a.s.AddFlavorAccess(r.Context(), id, body.Add.Tenant)
	case body.Remove != nil:
		ps, err = a.s.RemoveFlavorAccess(r.Context(), id, body.Remove.Tenant)
	default:
		err = fault.Invalidf("Invalid input: the body must hold addTenantAccess or removeTenantAccess.")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, flavorAccessView(id, ps))
}
