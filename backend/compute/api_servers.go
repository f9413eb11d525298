package compute

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) serverRoutes(r chi.Router) {
	r.Get("/servers", a.listServers(false))
	r.Get("/servers/detail", a.listServers(true))
	r.Post("/servers", a.createServer)
	r.Get("/servers/{id}", a.showServer)
	r.Put("/servers/{id}", a.updateServer)
	r.Delete("/servers/{id}", a.deleteServer)
	r.Get("/servers/{id}/ips", a.serverIPs)
	r.Post("/servers/{id}/action", a.serverAction)
	r.Post("/servers/{id}/remote-consoles", a.remoteConsole)
	r.Get("/servers/{id}/metadata", a.listMetadata)
	r.Post("/servers/{id}/metadata", a.updateMetadata(false))
	r.Put("/servers/{id}/metadata", a.updateMetadata(true))
	r.Get("/servers/{id}/metadata/{key}", a.showMetadataItem)
	r.Put("/servers/{id}/metadata/{key}", a.setMetadataItem)
	r.Delete("/servers/{id}/metadata/{key}", a.deleteMetadataItem)
	r.Get("/servers/{id}/os-instance-actions", a.listActions)
	r.Get("/servers/{id}/os-instance-actions/{req}", a.showAction)
	a.interfaceRoutes(r)
}

// serverView is a server in Nova's detail shape for the request's
// microversion. hostStatus maps host IDs to UP/DOWN/MAINTENANCE; groups
// adds server_groups (show, update and rebuild answers from 2.71).
func (a *apiHandler) serverView(r *http.Request, srv *Server, hostStatus map[string]string, groups bool) map[string]any {
	v := version(r)
	ctx := r.Context()
	image := any("")
	if srv.ImageRef != "" {
		image = map[string]any{"id": srv.ImageRef, "links": a.bookmark(r, "images", srv.ImageRef)}
	}
	var flavor map[string]any
	if v.atLeast(47) {
		flavor = map[string]any{"vcpus": srv.Flavor.VCPUs, "ram": srv.Flavor.MemoryMB, "disk": srv.Flavor.RootGB,
			"ephemeral": srv.Flavor.EphemeralGB, "swap": srv.Flavor.SwapMB, "original_name": srv.Flavor.Name}
		if a.s.allowed(ctx, "os_compute_api:os-flavor-extra-specs:index", nil) {
			specs := srv.Flavor.ExtraSpecs
			if specs == nil {
				specs = map[string]string{}
			}
			flavor["extra_specs"] = specs
		}
	} else {
		flavor = map[string]any{"id": srv.Flavor.ID, "links": a.bookmark(r, "flavors", srv.Flavor.ID)}
	}
	cd := ""
	if srv.ConfigDrive {
		cd = "True"
	}
	md := srv.Metadata
	if md == nil {
		md = map[string]string{}
	}
	m := map[string]any{
		"id": srv.ID, "name": srv.Name, "status": srv.Status(), "tenant_id": srv.ProjectID, "user_id": srv.UserID,
		"metadata": md, "hostId": srv.HostDigest(), "image": image, "flavor": flavor,
		"created": apiTime(srv.CreatedAt), "updated": apiTime(srv.UpdatedAt),
		"addresses": a.serverAddresses(ctx, srv), "accessIPv4": srv.AccessIPv4, "accessIPv6": srv.AccessIPv6,
		"links": a.links(r, "servers", srv.ID), "key_name": nullable(srv.KeyName), "config_drive": cd,
		"progress": srv.Progress, "OS-DCF:diskConfig": "MANUAL",
		"OS-EXT-AZ:availability_zone": srv.AvailabilityZone,
		"OS-EXT-STS:power_state":      srv.PowerState, "OS-EXT-STS:task_state": nullable(srv.TaskState),
		"OS-EXT-STS:vm_state":    srv.VMState,
		"OS-SRV-USG:launched_at": apiTimePtr(srv.LaunchedAt), "OS-SRV-USG:terminated_at": apiTimePtr(srv.TerminatedAt),
		"os-extended-volumes:volumes_attached": []any{},
	}
	if srv.Networks != NetworksNone {
		m["security_groups"] = securityGroupsView(srv)
	}
	if a.s.allowed(ctx, policyExtAttrs, srv.target()) {
		m["OS-EXT-SRV-ATTR:host"] = nullable(srv.Node)
		m["OS-EXT-SRV-ATTR:hypervisor_hostname"] = nullable(srv.Node)
		m["OS-EXT-SRV-ATTR:instance_name"] = srv.InstanceName()
		if v.atLeast(3) {
			m["OS-EXT-SRV-ATTR:hostname"] = srv.Hostname
			m["OS-EXT-SRV-ATTR:kernel_id"], m["OS-EXT-SRV-ATTR:ramdisk_id"] = "", ""
			m["OS-EXT-SRV-ATTR:launch_index"] = srv.LaunchIndex
			m["OS-EXT-SRV-ATTR:reservation_id"] = srv.ReservationID
			m["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
			m["OS-EXT-SRV-ATTR:user_data"] = nullable(srv.UserData)
		}
	}
	if v.atLeast(9) {
		m["locked"] = srv.Locked
	}
	if v.atLeast(16) && srv.HostID != "" && hostStatus != nil && a.s.allowed(ctx, policyHostStatus, srv.target()) {
		st, ok := hostStatus[srv.HostID]
		if !ok {
			st = "UNKNOWN"
		}
		m["host_status"] = st
	}
	if v.atLeast(19) {
		m["description"] = nullablePtr(srv.Description)
	}
	if v.atLeast(26) {
		m["tags"] = []any{}
	}
	if v.atLeast(63) {
		m["trusted_image_certificates"] = nil
	}
	if v.atLeast(71) && groups {
		g := srv.ServerGroups
		if g == nil {
			g = []string{}
		}
		m["server_groups"] = g
	}
	if v.atLeast(73) {
		m["locked_reason"] = nullablePtr(srv.LockedReason)
	}
	if srv.Fault != nil && (srv.VMState == VMError || srv.VMState == VMDeleted) {
		f := map[string]any{"code": srv.Fault.Code, "created": apiTime(srv.Fault.Created), "message": srv.Fault.Message}
		if srv.Fault.Code != 500 || a.s.allowed(ctx, policyFaultDetails, srv.target()) {
			f["details"] = srv.Fault.Details
		}
		m["fault"] = f
	}
	return m
}

func (a *apiHandler) hostStatuses(r *http.Request) map[string]string {
	return a.s.HostStatuses(r.Context())
}

func (a *apiHandler) listServers(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		v := version(r)
		var f ServerFilter
		var err error
		if f.Limit, err = queryInt(r, "limit"); err != nil {
			a.fail(w, r, err)
			return
		}
		f.Marker, f.Name, f.Image, f.Flavor = q.Get("marker"), q.Get("name"), q.Get("image"), q.Get("flavor")
		f.Host, f.AvailabilityZone, f.ReservationID = q.Get("host"), q.Get("availability_zone"), q.Get("reservation_id")
		f.ProjectID, f.UserID = firstOf(q.Get("project_id"), q.Get("tenant_id")), q.Get("user_id")
		if at := q.Get("all_tenants"); at != "" || q.Has("all_tenants") {
			f.AllTenants = at == "" || !(strings.EqualFold(at, "false") || at == "0" || strings.EqualFold(at, "no"))
		}
		f.Deleted = strings.EqualFold(q.Get("deleted"), "true")
		for _, st := range q["status"] {
			if !ValidStatus(st) {
				if v.atLeast(38) {
					a.fail(w, r, fault.Invalidf("Invalid status value"))
					return
				}
				rest.JSON(w, http.StatusOK, map[string]any{"servers": []any{}})
				return
			}
			f.Statuses = append(f.Statuses, st)
		}
		if s := q.Get("locked"); s != "" && v.atLeast(73) {
			b := strings.EqualFold(s, "true") || s == "1"
			f.Locked = &b
		}
		for _, p := range []struct {
			name string
			dst  **time.Time
			min  int
		}{{"changes-since", &f.ChangesSince, 1}, {"changes-before", &f.ChangesBefore, 66}} {
			if s := q.Get(p.name); s != "" && v.atLeast(p.min) {
				t, err := parseISOTime(s)
				if err != nil {
					a.fail(w, r, fault.Invalidf("Invalid input for query parameters %s. Value: %s. '%s' is not a 'date-time'", p.name, s, s))
					return
				}
				*p.dst = &t
			}
		}
		if f.ChangesSince != nil && f.ChangesBefore != nil && f.ChangesBefore.Before(*f.ChangesSince) {
			a.fail(w, r, fault.Invalidf("The value of changes-since must be less than or equal to changes-before."))
			return
		}
		f.SortKeys, f.SortDirs = q["sort_key"], q["sort_dir"]
		ss, err := a.s.ListServers(r.Context(), f)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out := make([]any, 0, len(ss))
		var hs map[string]string
		if detail {
			hs = a.hostStatuses(r)
		}
		for i := range ss {
			if detail {
				out = append(out, a.serverView(r, &ss[i], hs, false))
			} else {
				out = append(out, map[string]any{"id": ss[i].ID, "name": ss[i].Name, "links": a.links(r, "servers", ss[i].ID)})
			}
		}
		body := map[string]any{"servers": out}
		coll := "servers"
		if detail {
			coll = "servers/detail"
		}
		if len(ss) > 0 {
			if l := a.nextLink(r, coll, len(ss), f.Limit, ss[len(ss)-1].ID); l != nil {
				body["servers_links"] = l
			}
		}
		rest.JSON(w, http.StatusOK, body)
	}
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// parseISOTime reads the ISO 8601 timestamps clients send in filters.
func parseISOTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fault.Invalidf("Invalid timestamp %s", s)
}

func (a *apiHandler) showServer(w http.ResponseWriter, r *http.Request) {
	srv, err := a.s.GetServer(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"server": a.serverView(r, srv, a.hostStatuses(r), true)})
}

// createBody is POST /servers.
type createBody struct {
	Server *struct {
		Name             *string           `json:"name"`
		ImageRef         string            `json:"imageRef"`
		FlavorRef        json.RawMessage   `json:"flavorRef"`
		KeyName          string            `json:"key_name"`
		UserData         *string           `json:"user_data"`
		Metadata         map[string]string `json:"metadata"`
		AvailabilityZone string            `json:"availability_zone"`
		MinCount         flexInt           `json:"min_count"`
		MaxCount         flexInt           `json:"max_count"`
		ConfigDrive      flexBool          `json:"config_drive"`
		Networks         json.RawMessage   `json:"networks"`
		SecurityGroups   []struct {
			Name string `json:"name"`
		} `json:"security_groups"`
		Description *string           `json:"description"`
		AccessIPv4  string            `json:"accessIPv4"`
		AccessIPv6  string            `json:"accessIPv6"`
		AdminPass   string            `json:"adminPass"`
		ReturnResID flexBool          `json:"return_reservation_id"`
		Host        string            `json:"host"`
		BDM         []json.RawMessage `json:"block_device_mapping_v2"`
	} `json:"server"`
	Hints *struct {
		Group         string          `json:"group"`
		SameHost      json.RawMessage `json:"same_host"`
		DifferentHost json.RawMessage `json:"different_host"`
	} `json:"os:scheduler_hints"`
}

// stringOrList reads a hint that is a string or a list of strings.
func stringOrList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fault.Invalidf("Invalid input for field/attribute os:scheduler_hints: expected a string or a list of strings.")
	}
	return many, nil
}

func (a *apiHandler) createServer(w http.ResponseWriter, r *http.Request) {
	var body createBody
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.Server != nil, "server"); err != nil {
		a.fail(w, r, err)
		return
	}
	b := body.Server
	v := version(r)
	if b.Name == nil {
		a.fail(w, r, fault.Invalidf("Invalid input for field/attribute server. Value: {...}. 'name' is a required property"))
		return
	}
	if len(b.FlavorRef) == 0 {
		a.fail(w, r, fault.Invalidf("Invalid input for field/attribute server. Value: {...}. 'flavorRef' is a required property"))
		return
	}
	flavorRef, err := specValue(b.FlavorRef)
	if err != nil {
		a.fail(w, r, fault.Invalidf("Invalid input for field/attribute flavorRef."))
		return
	}
	if i := strings.LastIndex(flavorRef, "/"); i >= 0 {
		flavorRef = flavorRef[i+1:]
	}
	if len(b.BDM) > 0 {
		a.fail(w, r, fault.Invalidf("Block device mappings are not supported yet; boot from an image."))
		return
	}
	req := ServerCreate{
		Name: *b.Name, ImageRef: b.ImageRef, FlavorRef: flavorRef, KeyName: b.KeyName, Metadata: b.Metadata,
		AvailabilityZone: b.AvailabilityZone, MinCount: b.MinCount.v, MaxCount: b.MaxCount.v,
		ConfigDrive: b.ConfigDrive.v, AccessIPv4: b.AccessIPv4, AccessIPv6: b.AccessIPv6, AdminPass: b.AdminPass,
	}
	if b.MinCount.set && b.MinCount.v < 1 || b.MaxCount.set && b.MaxCount.v < 1 {
		a.fail(w, r, fault.Invalidf("Invalid input for field/attribute min_count. Value: 0. 0 is less than the minimum of 1"))
		return
	}
	if b.UserData != nil {
		req.UserData = *b.UserData
	}
	if v.atLeast(19) {
		req.Description = b.Description
	}
	if b.Host != "" && v.atLeast(74) {
		req.AvailabilityZone = b.AvailabilityZone + ":" + b.Host
		if i := strings.Index(b.AvailabilityZone, ":"); i >= 0 {
			req.AvailabilityZone = b.AvailabilityZone[:i] + ":" + b.Host
		}
	}
	switch nets := strings.TrimSpace(string(b.Networks)); {
	case nets == "" || nets == "null":
		if v.atLeast(37) {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute server. Value: {...}. 'networks' is a required property"))
			return
		}
	case strings.HasPrefix(nets, "["):
		var list []NetworkRequest
		if err := json.Unmarshal(b.Networks, &list); err != nil {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute networks."))
			return
		}
		req.NetworkList = list
		if req.NetworkList == nil {
			req.NetworkList = []NetworkRequest{}
		}
	default:
		var s string
		if err := json.Unmarshal(b.Networks, &s); err != nil || (s != NetworksAuto && s != NetworksNone) {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute networks. Value: %s. It must be \"auto\", \"none\" or a list.", nets))
			return
		}
		req.Networks = s
	}
	for _, g := range b.SecurityGroups {
		if g.Name == "" {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute security_groups."))
			return
		}
		req.SecurityGroups = append(req.SecurityGroups, g.Name)
	}
	if body.Hints != nil {
		req.Hints.Group = body.Hints.Group
		if req.Hints.SameHost, err = stringOrList(body.Hints.SameHost); err == nil {
			req.Hints.DifferentHost, err = stringOrList(body.Hints.DifferentHost)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
	}
	res, err := a.s.CreateServers(r.Context(), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if b.ReturnResID.v {
		rest.JSON(w, http.StatusAccepted, map[string]any{"reservation_id": res.ReservationID})
		return
	}
	srv := res.Servers[0]
	m := map[string]any{"id": srv.ID, "links": a.links(r, "servers", srv.ID), "OS-DCF:diskConfig": "MANUAL",
		"adminPass": res.AdminPass}
	if srv.Networks != NetworksNone {
		m["security_groups"] = securityGroupsView(srv)
	}
	w.Header().Set("Location", a.baseURL(r)+"/v2.1/servers/"+srv.ID)
	rest.JSON(w, http.StatusAccepted, map[string]any{"server": m})
}

func (a *apiHandler) updateServer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Server map[string]json.RawMessage `json:"server"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.Server != nil, "server"); err != nil {
		a.fail(w, r, err)
		return
	}
	var u ServerUpdate
	str := func(key string) (*string, error) {
		raw, ok := body.Server[key]
		if !ok {
			return nil, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fault.Invalidf("Invalid input for field/attribute %s.", key)
		}
		return &s, nil
	}
	var err error
	if u.Name, err = str("name"); err == nil {
		if u.AccessIPv4, err = str("accessIPv4"); err == nil {
			u.AccessIPv6, err = str("accessIPv6")
		}
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if raw, ok := body.Server["description"]; ok && version(r).atLeast(19) {
		var d *string
		if err := json.Unmarshal(raw, &d); err != nil {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute description."))
			return
		}
		u.Description = &d
	}
	srv, err := a.s.UpdateServer(r.Context(), chi.URLParam(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"server": a.serverView(r, srv, a.hostStatuses(r), true)})
}

func (a *apiHandler) deleteServer(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteServer(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) serverIPs(w http.ResponseWriter, r *http.Request) {
	srv, err := a.s.GetServer(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	addrs, err := a.s.ServerAddresses(r.Context(), srv)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"addresses": addressesView(addrs, false)})
}

// serverAddresses is srv's addresses view; a network service that fails
// leaves it empty rather than failing the whole view.
func (a *apiHandler) serverAddresses(ctx context.Context, srv *Server) map[string]any {
	nets, err := a.s.ServerAddresses(ctx, srv)
	if err != nil {
		a.s.log.Warn("server addresses", "instance", srv.ID, "err", err)
	}
	return addressesView(nets, true)
}

// addressesView is Nova's addresses: by network name, each address with
// its version (and, in server views, its type and MAC).
func addressesView(nets []AddressNetwork, full bool) map[string]any {
	out := map[string]any{}
	for _, n := range nets {
		list := []any{}
		for _, ad := range n.Addresses {
			m := map[string]any{"version": ad.Version, "addr": ad.Addr}
			if full {
				m["OS-EXT-IPS:type"] = "fixed"
				if ad.Floating {
					m["OS-EXT-IPS:type"] = "floating"
				}
				m["OS-EXT-IPS-MAC:mac_addr"] = ad.MAC
			}
			list = append(list, m)
		}
		out[n.Network] = list
	}
	return out
}

// securityGroupsView names the groups of srv's ports as requested.
func securityGroupsView(srv *Server) []any {
	if p, ok := planOf(srv.Networks); ok && len(p.SecurityGroups) > 0 {
		out := make([]any, 0, len(p.SecurityGroups))
		for _, g := range p.SecurityGroups {
			out = append(out, map[string]any{"name": g})
		}
		return out
	}
	return []any{map[string]any{"name": "default"}}
}
