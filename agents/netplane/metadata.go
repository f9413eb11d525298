package netplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// The metadata service as guests reach it: 169.254.169.254:80 through
// their router, redirected inside the router namespace to a proxy on
// metadataProxyPort, as neutron's L3 agent does with its haproxy.
const (
	metadataIP        = "169.254.169.254"
	metadataProxyPort = 9697
	// metadataTimeout bounds one request to the controller.
	metadataTimeout = 10 * time.Second
)

// metadataRedirect is the router's PREROUTING rule that sends guests'
// metadata requests, arriving on internal legs, to the proxy.
func metadataRedirect() rule {
	return r("-d", metadataIP+"/32", "-i", prefixRtrInt+"+", "-p", "tcp", "-m", "tcp", "--dport", "80",
		"-j", "REDIRECT", "--to-ports", strconv.Itoa(metadataProxyPort))
}

// ServeMetadata starts answering guests' metadata requests through f: a
// proxy in every router namespace, now for the routers already on the
// host (an agent restart) and from then on for every router applied. The
// proxy names the router and the guest's source address; the controller
// finds the instance from those, so one guest can never ask for another's
// metadata.
func (p *Plane) ServeMetadata(f agentapi.MetadataFetcher) {
	p.mdMu.Lock()
	p.fetcher = f
	p.mdMu.Unlock()
	inv, err := p.List(context.Background())
	if err != nil {
		p.log.Warn("metadata proxies: list routers", "err", err)
		return
	}
	for _, id := range inv.Routers {
		if err := p.ensureMetadataProxy(id); err != nil {
			p.log.Warn("metadata proxy", "router_id", id, "err", err)
		}
	}
}

// ensureMetadataProxy starts the proxy of router id unless it runs or no
// fetcher was given yet.
func (p *Plane) ensureMetadataProxy(id string) error {
	p.mdMu.Lock()
	defer p.mdMu.Unlock()
	if p.fetcher == nil || p.proxies[id] != nil {
		return nil
	}
	var ln net.Listener
	err := inNamespace(routerNS(id), func() error {
		var err error
		ln, err = net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(metadataProxyPort))
		return err
	})
	if err != nil {
		return fmt.Errorf("listen in %s: %w", routerNS(id), err)
	}
	srv := &http.Server{
		Handler:           p.metadataHandler(id),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      2 * metadataTimeout,
		MaxHeaderBytes:    16 << 10,
	}
	if p.proxies == nil {
		p.proxies = map[string]*http.Server{}
	}
	p.proxies[id] = srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Warn("metadata proxy stopped", "router_id", id, "err", err)
		}
	}()
	return nil
}

// stopMetadataProxy closes router id's proxy. It must run before the
// namespace goes: a listening socket would keep the namespace, and the
// legs in it, alive after `ip netns delete`.
func (p *Plane) stopMetadataProxy(id string) {
	p.mdMu.Lock()
	srv := p.proxies[id]
	delete(p.proxies, id)
	p.mdMu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// metadataHandler forwards a guest's GET to the controller.
func (p *Plane) metadataHandler(routerID string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		host, _, err := net.SplitHostPort(req.RemoteAddr)
		if err != nil {
			http.Error(w, "Bad Request", http.StatusBadRequest)
			return
		}
		p.mdMu.Lock()
		f := p.fetcher
		p.mdMu.Unlock()
		ctx, cancel := context.WithTimeout(req.Context(), metadataTimeout)
		defer cancel()
		out, err := f.FetchMetadata(ctx, agentapi.MetadataRequest{RouterID: routerID, RemoteIP: host, Path: req.URL.Path})
		if err != nil {
			switch fault.KindOf(err) {
			case fault.NotFound:
				http.Error(w, "Not Found", http.StatusNotFound)
			default:
				p.log.Warn("metadata request failed", "router_id", routerID, "remote_ip", host, "path", req.URL.Path, "err", err)
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			}
			return
		}
		w.Header().Set("Content-Type", out.ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(out.Body)))
		if req.Method == http.MethodGet {
			_, _ = w.Write(out.Body)
		}
	})
}
