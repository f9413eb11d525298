package identity

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Names of what Bootstrap creates.
const (
	AdminProjectName = "admin"
	AdminUserName    = "admin"
	DemoProjectName  = "demo"
	DemoUserName     = "demo"
	DefaultRegion    = "RegionOne"
)

// bootstrapRoles are the global roles every cloud starts with: Keystone's
// three, the service role, and the personas Nimbus's policies know.
var bootstrapRoles = []string{"admin", "member", "reader", "service", "netadmin", "itsec", "project_manager"}

// bootstrapImplied are the implied-role rules: admin implies member implies
// reader, as keystone-manage bootstrap makes them, and a project manager is
// a member too.
var bootstrapImplied = [][2]string{{"admin", "member"}, {"member", "reader"}, {"project_manager", "member"}}

// Bootstrap prepares the identity service on every start, like
// keystone-manage bootstrap. The first run creates the default domain, the
// roles and their implications, the admin project and user (with
// b.AdminPassword, or a random one it returns), admin on that project and
// on the system, a demo project and user (random password, stored only
// hashed; an admin can reset it) holding member there, and the region.
// Every run, the first included, ensures a catalog service per b.Services
// with public, internal and admin endpoints at PublicURL+Path, updating
// URLs that changed, and creates anything else missing without touching
// what exists (passwords included). It acts for the operator, so it needs
// no credentials. Faults: Invalid (a bad URL or password).
func (s *Service) Bootstrap(ctx context.Context, b BootstrapConfig) (*BootstrapResult, error) {
	if b.Region == "" {
		b.Region = DefaultRegion
	}
	pub := strings.TrimRight(b.PublicURL, "/")
	for _, sp := range b.Services {
		if sp.Type == "" {
			return nil, fault.Invalidf("Bootstrap: a catalog service needs a type.")
		}
		if err := checkURL(pub + sp.Path); err != nil {
			return nil, err
		}
	}
	res := &BootstrapResult{}
	var adminHash, demoHash []byte
	// Hash outside the transaction: bcrypt is slow and the write lock is shared.
	adminPW := b.AdminPassword
	if adminPW == "" {
		adminPW = randomPassword()
	}
	var err error
	if adminHash, err = hashPassword(adminPW, s.cfg.BcryptCost); err != nil {
		return nil, err
	}
	if demoHash, err = hashPassword(randomPassword(), s.cfg.BcryptCost); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res.Created = false
		if _, err := getDomain(ctx, tx, DefaultDomainID); fault.Is(err, fault.NotFound) {
			d := Domain{ID: DefaultDomainID, Name: "Default", Description: "The default domain", Enabled: true, CreatedAt: now}
			if err := insertDomain(ctx, tx, &d); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		roles := map[string]string{}
		created := map[string]bool{}
		for _, name := range bootstrapRoles {
			r, err := roleByName(ctx, tx, "", name)
			if fault.Is(err, fault.NotFound) {
				r = &Role{ID: newID(), Name: name}
				if err := insertRole(ctx, tx, r, now); err != nil {
					return err
				}
				created[name] = true
			} else if err != nil {
				return err
			}
			roles[name] = r.ID
		}
		for _, ir := range bootstrapImplied {
			if created[ir[0]] || created[ir[1]] {
				if err := insertImplied(ctx, tx, roles[ir[0]], roles[ir[1]]); err != nil {
					return err
				}
			}
		}
		adminProject, _, err := ensureProject(ctx, tx, AdminProjectName, "Bootstrap project for initializing the cloud.", now)
		if err != nil {
			return err
		}
		res.AdminProject = adminProject
		adminUser, madeAdmin, err := ensureUser(ctx, tx, AdminUserName, string(adminHash), now)
		if err != nil {
			return err
		}
		res.AdminUserID = adminUser
		if madeAdmin {
			res.Created, res.AdminPassword = true, adminPW
			for _, a := range []Assignment{
				{ActorType: ActorUser, ActorID: adminUser, TargetType: TargetProject, TargetID: adminProject, RoleID: roles["admin"]},
				{ActorType: ActorUser, ActorID: adminUser, TargetType: TargetSystem, TargetID: SystemAll, RoleID: roles["admin"]},
			} {
				if err := insertAssignment(ctx, tx, a); err != nil {
					return err
				}
			}
			demoProject, _, err := ensureProject(ctx, tx, DemoProjectName, "Demo project.", now)
			if err != nil {
				return err
			}
			demoUser, _, err := ensureUser(ctx, tx, DemoUserName, string(demoHash), now)
			if err != nil {
				return err
			}
			if err := insertAssignment(ctx, tx, Assignment{ActorType: ActorUser, ActorID: demoUser,
				TargetType: TargetProject, TargetID: demoProject, RoleID: roles["member"]}); err != nil {
				return err
			}
		}
		if _, err := getRegion(ctx, tx, b.Region); fault.Is(err, fault.NotFound) {
			if err := insertRegion(ctx, tx, &Region{ID: b.Region}, now); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		for _, sp := range b.Services {
			if err := ensureCatalogService(ctx, tx, sp, pub+sp.Path, b.Region, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ensureProject returns the ID of the named project of the default domain,
// creating it when missing.
func ensureProject(ctx context.Context, tx *sql.Tx, name, desc string, now time.Time) (string, bool, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT id FROM projects WHERE domain_id = ? AND name = ?`, DefaultDomainID, name).Scan(&id)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", false, err
	}
	p := Project{ID: newID(), Name: name, DomainID: DefaultDomainID, Description: desc, Enabled: true, CreatedAt: now}
	return p.ID, true, insertProject(ctx, tx, &p)
}

// ensureUser returns the ID of the named user of the default domain,
// creating it with hash when missing.
func ensureUser(ctx context.Context, tx *sql.Tx, name, hash string, now time.Time) (string, bool, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE domain_id = ? AND name = ?`, DefaultDomainID, name).Scan(&id)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", false, err
	}
	u := User{ID: newID(), Name: name, DomainID: DefaultDomainID, Enabled: true, CreatedAt: now, PasswordSetAt: &now}
	return u.ID, true, insertUser(ctx, tx, &u, hash)
}

// ensureCatalogService makes sure the service of sp's type and name exists
// with an endpoint per interface in region at url.
func ensureCatalogService(ctx context.Context, tx *sql.Tx, sp ServiceSpec, url, region string, now time.Time) error {
	all, err := listServices(ctx, tx, sp.Type)
	if err != nil {
		return err
	}
	var svc *CatalogService
	for i := range all {
		if all[i].Name == sp.Name || svc == nil {
			svc = &all[i]
			if all[i].Name == sp.Name {
				break
			}
		}
	}
	if svc == nil {
		svc = &CatalogService{ID: newID(), Type: sp.Type, Name: sp.Name, Enabled: true}
		if err := insertService(ctx, tx, svc, now); err != nil {
			return err
		}
	}
	eps, err := listEndpoints(ctx, tx, EndpointFilter{ServiceID: svc.ID, RegionID: region})
	if err != nil {
		return err
	}
	for _, iface := range []string{"public", "internal", "admin"} {
		var ep *Endpoint
		for i := range eps {
			if eps[i].Interface == iface {
				ep = &eps[i]
				break
			}
		}
		switch {
		case ep == nil:
			e := Endpoint{ID: newID(), ServiceID: svc.ID, Interface: iface, RegionID: region, URL: url, Enabled: true}
			if err := insertEndpoint(ctx, tx, &e, now); err != nil {
				return err
			}
		case ep.URL != url:
			ep.URL = url
			if err := updateEndpointRow(ctx, tx, ep); err != nil {
				return err
			}
		}
	}
	return nil
}
