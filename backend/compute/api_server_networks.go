package compute

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// interfaceRoutes registers os-interface, a server's interface attachments.
func (a *apiHandler) interfaceRoutes(r chi.Router) {
	r.Get("/servers/{id}/os-interface", a.listInterfaces)
	r.Post("/servers/{id}/os-interface", a.attachInterface)
	r.Get("/servers/{id}/os-interface/{port}", a.showInterface)
	r.Delete("/servers/{id}/os-interface/{port}", a.detachInterface)
}

// interfaceView is a port in Nova's interfaceAttachment shape.
func interfaceView(r *http.Request, p *PortInfo) map[string]any {
	ips := make([]any, 0, len(p.FixedIPs))
	for _, ip := range p.FixedIPs {
		ips = append(ips, map[string]any{"subnet_id": ip.SubnetID, "ip_address": ip.IP})
	}
	m := map[string]any{"port_state": p.Status, "fixed_ips": ips, "port_id": p.ID, "net_id": p.NetworkID,
		"mac_addr": p.MAC}
	if version(r).atLeast(70) {
		m["tag"] = nil
	}
	return m
}

func (a *apiHandler) listInterfaces(w http.ResponseWriter, r *http.Request) {
	ports, err := a.s.ListInterfaces(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(ports))
	for i := range ports {
		out = append(out, interfaceView(r, &ports[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"interfaceAttachments": out})
}

func (a *apiHandler) showInterface(w http.ResponseWriter, r *http.Request) {
	p, err := a.s.GetInterface(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "port"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"interfaceAttachment": interfaceView(r, p)})
}

func (a *apiHandler) attachInterface(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Attachment *struct {
			NetID    string `json:"net_id"`
			PortID   string `json:"port_id"`
			FixedIPs []struct {
				IPAddress string `json:"ip_address"`
			} `json:"fixed_ips"`
		} `json:"interfaceAttachment"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	var req InterfaceRequest
	if b := body.Attachment; b != nil {
		req.NetworkID, req.PortID = b.NetID, b.PortID
		switch len(b.FixedIPs) {
		case 0:
		case 1:
			if b.FixedIPs[0].IPAddress == "" {
				a.fail(w, r, fault.Invalidf("Invalid input for field/attribute fixed_ips. 'ip_address' is a required property"))
				return
			}
			req.FixedIP = b.FixedIPs[0].IPAddress
		default:
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute fixed_ips. Value: %d addresses. It is too long (at most 1)", len(b.FixedIPs)))
			return
		}
	}
	p, err := a.s.AttachInterface(r.Context(), chi.URLParam(r, "id"), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"interfaceAttachment": interfaceView(r, p)})
}

func (a *apiHandler) detachInterface(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DetachInterface(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "port")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// floatingIPAction is the addFloatingIp and removeFloatingIp server
// actions, which Nova removed in 2.44 (answering 404 from then on).
func (a *apiHandler) floatingIPAction(w http.ResponseWriter, r *http.Request, id, name string, raw json.RawMessage) {
	if version(r).atLeast(44) {
		a.notFound(w, r)
		return
	}
	var b struct {
		Address      *string `json:"address"`
		FixedAddress *string `json:"fixed_address"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		a.fail(w, r, fault.Invalidf("Invalid input for field/attribute %s.", name))
		return
	}
	if b.Address == nil {
		a.fail(w, r, fault.Invalidf("Invalid input for field/attribute %s. Value: %s. 'address' is a required property", name, raw))
		return
	}
	var err error
	if name == "addFloatingIp" {
		fixed := ""
		if b.FixedAddress != nil {
			fixed = *b.FixedAddress
		}
		err = a.s.AddFloatingIP(r.Context(), id, *b.Address, fixed)
	} else {
		err = a.s.RemoveFloatingIP(r.Context(), id, *b.Address)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
