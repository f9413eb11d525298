package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/network/dataplane"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
	"github.com/nimbus-cloud/nimbus/novnc"
	"github.com/nimbus-cloud/nimbus/web"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// shutdownGrace bounds how long in-flight requests may take to finish after
// SIGINT or SIGTERM.
const shutdownGrace = 30 * time.Second

// run is the whole program: it parses args, serves until ctx ends, and
// returns once everything has shut down cleanly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch cmd := args[0]; cmd {
	case "up", "controller":
		cfg, err := parseConfig(cmd, args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cmd, cfg, stdout, stderr)
	case "image":
		if len(args) < 2 || args[1] != "build" {
			fmt.Fprint(stderr, usage)
			return errors.New("usage: nimbus image build [--output FILE]")
		}
		return imageBuild(ctx, args[2:], getenv, stdout, stderr)
	case "agent":
		return agentCommand(ctx, args[1:], getenv, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "nimbus", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// serve runs the control plane (and, for up, the local agents) until ctx
// is cancelled.
func serve(ctx context.Context, cmd string, cfg *config, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	slog.SetDefault(log)

	if err := os.MkdirAll(cfg.dataDir, 0o711); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	database, err := db.Open(filepath.Join(cfg.dataDir, "nimbus.db"))
	if err != nil {
		return err
	}
	defer database.Close()
	if err := database.Migrate(ctx, migrations.FS); err != nil {
		return err
	}

	pol := policy.New(policy.BaseRules())
	pol.Register(identity.PolicyRules()...)
	pol.Register(image.PolicyRules()...)
	pol.Register(hosts.PolicyRules()...)
	pol.Register(compute.PolicyRules()...)
	pol.Register(network.PolicyRules()...)
	if cfg.policyFile != "" {
		if err := pol.LoadFile(cfg.policyFile); err != nil {
			return fmt.Errorf("load policy file: %w", err)
		}
	}
	ids, err := identity.New(ctx, database, identity.Config{TokenTTL: cfg.tokenTTL, Policy: pol})
	if err != nil {
		return fmt.Errorf("start identity: %w", err)
	}

	// Listen before bootstrapping so the catalog advertises the port really bound.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	defer ln.Close()
	publicURL := cfg.advertisedURL(ln.Addr())

	boot, err := ids.Bootstrap(ctx, identity.BootstrapConfig{
		PublicURL: publicURL,
		Services:  catalog(),
	})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	authURL := publicURL + "/identity/v3"
	if boot.Created {
		if err := writeOpenrc(cfg.dataDir, authURL, boot.AdminPassword); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "First start: created the admin user.\n  admin password: %s\n  (also in %s; it is not shown again)\n",
			boot.AdminPassword, filepath.Join(cfg.dataDir, openrcName))
	} else if err := updateOpenrcAuthURL(cfg.dataDir, authURL); err != nil {
		return err
	}
	svc := serviceContext(ctx)

	imgs, err := image.New(ctx, database, image.Config{
		DataDir:     cfg.dataDir,
		Policy:      pol,
		Tokens:      ids,
		IdentityURL: publicURL + "/identity",
	})
	if err != nil {
		return fmt.Errorf("start image service: %w", err)
	}
	if err := registerTinyImage(ctx, imgs, boot.AdminProject, filepath.Join(cfg.dataDir, tinyImageFile), log); err != nil {
		return err
	}

	// Services publish their changes here; the dashboard's live hub fans
	// them out to the browsers.
	bus := events.New()
	reg, err := hosts.New(ctx, database, hosts.Config{Policy: pol, Logger: log, Events: bus})
	if err != nil {
		return fmt.Errorf("start host registry: %w", err)
	}
	reg.SetImageSource(agentImages{imgs})
	// The network service tells the data plane syncer of every change; the
	// syncer pushes networks, routers and port security to the agents and
	// resyncs a host when it joins or comes back.
	var comp *compute.Service
	dp := dataplane.New(dataplane.Config{
		Hosts:          reg,
		ExternalBridge: externalBridge,
		DeviceName: func(ctx context.Context, id string) string {
			if comp == nil {
				return ""
			}
			if srv, err := comp.GetServer(serviceContext(ctx), id); err == nil {
				return srv.Name
			}
			return ""
		},
		Logger: log,
	})
	defer dp.Close()
	notify := newNetworkEvents(dp, bus)
	nets, err := network.New(ctx, database, network.Config{
		Policy:      pol,
		Tokens:      ids,
		IdentityURL: publicURL + "/identity",
		Notifier:    notify,
		Agents:      networkAgents{reg: reg, dp: dp},
	})
	if err != nil {
		return fmt.Errorf("start network service: %w", err)
	}
	dp.SetNetworks(nets)
	if err := notify.attach(ctx, nets); err != nil {
		return fmt.Errorf("read floating IPs: %w", err)
	}
	reg.Subscribe(dp)
	if cfg.agents > 0 {
		if err := ensurePublicNetwork(ctx, nets, boot.AdminProject, cfg.dataDir, log); err != nil {
			return err
		}
	}
	comp, err = compute.New(ctx, database, compute.Config{
		Policy:      pol,
		Events:      bus,
		Networks:    computeNetworks{nets: nets, wire: dp.WirePort},
		Hosts:       reg,
		Tokens:      ids,
		IdentityURL: publicURL + "/identity",
		Images:      computeImages{imgs},
		PublicURL:   publicURL,
		Logger:      log,
	})
	if err != nil {
		return fmt.Errorf("start compute: %w", err)
	}
	defer comp.Close()
	reg.SetMetadataSource(metadataSource{nets: nets, comp: comp})
	if err := comp.EnsureDefaultFlavors(svc); err != nil {
		return fmt.Errorf("default flavors: %w", err)
	}
	console := novnc.New(novnc.Config{
		Tokens:         consoleTokens{comp},
		Dialer:         vncDialer{reg},
		AllowedOrigins: []string{publicURL},
		Logger:         log,
	})
	joinToken, err := reg.CreateJoinToken(svc, joinTokenTTL)
	if err != nil {
		return fmt.Errorf("create agent join token: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(cfg.dataDir, joinTokenFile), []byte(joinToken+"\n"), 0o600); err != nil {
		return err
	}

	dash, err := web.New(web.Config{
		Identity: ids,
		Compute:  comp,
		Images:   imgs,
		Network:  nets,
		Events:   bus,
		DB:       database,
		APIs: []web.Mount{
			{Prefix: "/identity", Handler: identity.NewAPI(ids, publicURL+"/identity")},
			{Prefix: "/image", Handler: image.NewAPI(imgs, publicURL+"/image")},
			{Prefix: "/compute", Handler: compute.NewAPI(comp, publicURL+"/compute")},
			{Prefix: "/network", Handler: network.NewAPI(nets, publicURL+"/network")},
			{Prefix: "/agents", Handler: reg.Handler()},
			{Prefix: "/console", Handler: console.Handler()},
		},
		Secure: cfg.tls(),
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("start dashboard: %w", err)
	}
	defer dash.Close()

	srv := &http.Server{
		Handler:           dash.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.tls() {
			errc <- srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()

	var agents *localAgents
	if cfg.agents > 0 {
		agents, err = startLocalAgents(ctx, cfg, publicURL, joinToken, log)
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			_ = srv.Shutdown(sctx)
			return fmt.Errorf("start local agents: %w", err)
		}
	}
	fmt.Fprintf(stdout, "nimbus %s (%s) listening on %s\n  dashboard: %s/\n  identity:  %s\n", cmd, version, ln.Addr(), publicURL, authURL)

	select {
	case err := <-errc:
		if agents != nil {
			agents.stop()
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	// Stop taking requests first, then let compute finish the work those
	// requests started (a delete destroys its domain through an agent), and
	// only then stop the agents: a request accepted during shutdown is never
	// left half done on a host.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	comp.Close()
	if agents != nil {
		agents.stop()
	}
	if shutErr != nil {
		return fmt.Errorf("shutdown: %w", shutErr)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// catalog lists the services this control plane serves, one catalog entry each.
func catalog() []identity.ServiceSpec {
	return []identity.ServiceSpec{
		{Type: "identity", Name: "keystone", Path: "/identity"},
		{Type: "image", Name: "glance", Path: "/image"},
		{Type: "compute", Name: "nova", Path: "/compute/v2.1"},
		{Type: "network", Name: "neutron", Path: "/network"},
	}
}
