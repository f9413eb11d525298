// Package identity is Nimbus's identity service, compatible with Keystone v3:
// domains, projects, users, groups, roles and their assignments, the service
// catalog, application credentials, and self-contained signed tokens whose
// revocation takes effect at once.
//
// Every exported method that acts for a caller reads the caller's
// credentials from the context (auth.FromContext) and checks its action
// through the policy engine, so the REST API and the dashboard enforce the
// same rules. Errors are *fault.Error values; each method's doc names the
// kinds it returns.
package identity

import (
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
)

// DefaultDomainID is the ID of the domain created at bootstrap, as in Keystone.
const DefaultDomainID = "default"

// Domain is a container for projects, users and groups.
type Domain struct {
	ID          string
	Name        string
	Description string
	Enabled     bool
	CreatedAt   time.Time
}

// Project is a tenant: the owner of resources and the scope of a token.
type Project struct {
	ID          string
	Name        string
	DomainID    string
	ParentID    string // "" for a top-level project; Keystone reports the domain ID then
	Description string
	Enabled     bool
	Tags        []string
	CreatedAt   time.Time
}

// User is a person or service account that authenticates.
type User struct {
	ID               string
	Name             string
	DomainID         string
	DefaultProjectID string
	Description      string
	Email            string
	Enabled          bool
	PasswordSetAt    *time.Time
	CreatedAt        time.Time
}

// Group is a set of users that roles can be granted to as one.
type Group struct {
	ID          string
	Name        string
	DomainID    string
	Description string
}

// Role is a named set of permissions, interpreted by policy. DomainID is ""
// for a global role.
type Role struct {
	ID          string
	Name        string
	DomainID    string
	Description string
}

// Actor and target types of a role assignment.
const (
	ActorUser     = "user"
	ActorGroup    = "group"
	TargetProject = "project"
	TargetDomain  = "domain"
	TargetSystem  = "system"
	// SystemAll is the target ID of the whole-system scope.
	SystemAll = "all"
)

// Assignment grants a role to a user or group on a project, a domain or the system.
type Assignment struct {
	ActorType  string // ActorUser or ActorGroup
	ActorID    string
	TargetType string // TargetProject, TargetDomain or TargetSystem
	TargetID   string
	RoleID     string
	Inherited  bool

	// Filled by ListRoleAssignments when asked for names.
	ActorName        string
	ActorDomainID    string
	ActorDomainName  string
	TargetName       string
	TargetDomainID   string
	TargetDomainName string
	RoleName         string
	// ViaGroupID is set on effective user assignments that come from a group.
	ViaGroupID string
}

// Region is a catalog region.
type Region struct {
	ID             string
	Description    string
	ParentRegionID string
}

// CatalogService is a service in the catalog (Keystone's "service").
type CatalogService struct {
	ID          string
	Type        string
	Name        string
	Description string
	Enabled     bool
}

// Endpoint is where a catalog service answers for one interface in one region.
type Endpoint struct {
	ID        string
	ServiceID string
	Interface string // public, internal or admin
	RegionID  string
	URL       string
	Enabled   bool
}

// CatalogEntry is one service with its enabled endpoints, as a token's catalog lists it.
type CatalogEntry struct {
	Service   CatalogService
	Endpoints []Endpoint
}

// AppCredential is an application credential: a secret bound to a user and a
// project, carrying a subset of the user's roles there.
type AppCredential struct {
	ID           string
	Name         string
	UserID       string
	ProjectID    string
	Description  string
	ExpiresAt    *time.Time
	Unrestricted bool
	Roles        []Role
	// Secret is set only in the result of CreateAppCredential.
	Secret string
}

// ListOptions pages a listing: at most Limit items (0 = the service maximum)
// after the item whose ID is Marker.
type ListOptions struct {
	Limit  int
	Marker string
}

// ProjectFilter selects projects, as Keystone's query parameters do.
type ProjectFilter struct {
	Name       string
	DomainID   string
	ParentID   string
	Enabled    *bool
	Tags       []string // all of them
	TagsAny    []string // any of them
	NotTags    []string // not all of them
	NotTagsAny []string // none of them
	ListOptions
}

// UserFilter selects users.
type UserFilter struct {
	Name     string
	DomainID string
	Enabled  *bool
	ListOptions
}

// GroupFilter selects groups.
type GroupFilter struct {
	Name     string
	DomainID string
	ListOptions
}

// RoleFilter selects roles.
type RoleFilter struct {
	Name     string
	DomainID string
	ListOptions
}

// DomainFilter selects domains.
type DomainFilter struct {
	Name    string
	Enabled *bool
	ListOptions
}

// AssignmentFilter selects role assignments, as GET /v3/role_assignments does.
type AssignmentFilter struct {
	UserID    string
	GroupID   string
	ProjectID string
	DomainID  string
	System    bool
	RoleID    string
	// Effective expands group assignments into their members' and drops the
	// group rows, as Keystone's ?effective does.
	Effective bool
	// IncludeNames fills the *Name fields.
	IncludeNames bool
}

// ProjectUpdate changes the non-nil fields of a project.
type ProjectUpdate struct {
	Name        *string
	Description *string
	Enabled     *bool
	Tags        *[]string
}

// UserUpdate changes the non-nil fields of a user. Password set by an admin
// replaces the password without needing the old one.
type UserUpdate struct {
	Name             *string
	Description      *string
	Email            *string
	Enabled          *bool
	DefaultProjectID *string
	Password         *string
}

// DomainUpdate changes the non-nil fields of a domain.
type DomainUpdate struct {
	Name        *string
	Description *string
	Enabled     *bool
}

// GroupUpdate changes the non-nil fields of a group.
type GroupUpdate struct {
	Name        *string
	Description *string
}

// RoleUpdate changes the non-nil fields of a role.
type RoleUpdate struct {
	Name        *string
	Description *string
}

// Auth methods.
const (
	MethodPassword      = "password"
	MethodToken         = "token"
	MethodAppCredential = "application_credential"
)

// PasswordAuth identifies a user by ID, or by name plus domain ID or name.
type PasswordAuth struct {
	UserID     string
	UserName   string
	DomainID   string
	DomainName string
	Password   string
}

// AppCredentialAuth identifies an application credential by ID, or by name
// plus its user (by ID, or by name plus domain).
type AppCredentialAuth struct {
	ID             string
	Name           string
	UserID         string
	UserName       string
	UserDomainID   string
	UserDomainName string
	Secret         string
}

// Scope is what a token is asked to be scoped to. At most one of project,
// domain and system may be set; none means unscoped (or the user's default
// project, as Keystone does when the user has one).
type Scope struct {
	ProjectID         string
	ProjectName       string
	ProjectDomainID   string
	ProjectDomainName string
	DomainID          string
	DomainName        string
	System            bool
	// Unscoped forces an unscoped token even when the user has a default project.
	Unscoped bool
}

// AuthRequest is a POST /v3/auth/tokens body, decoded.
type AuthRequest struct {
	Methods       []string
	Password      *PasswordAuth
	Token         string // for the token method: the token being rescoped
	AppCredential *AppCredentialAuth
	Scope         Scope
	// Source is the client's address, for login throttling.
	Source string
}

// TokenInfo is an issued or validated token with everything Keystone's token
// body shows.
type TokenInfo struct {
	Token       string
	Credentials auth.Credentials
	User        User
	UserDomain  Domain
	Project     *Project // nil unless project-scoped
	ProjectDom  *Domain  // the project's domain
	Domain      *Domain  // nil unless domain-scoped
	Roles       []Role
	Catalog     []CatalogEntry // empty when unscoped
	// AuditIDs is [this token's audit ID] or, for a rescoped token,
	// [its audit ID, the original token's audit ID].
	AuditIDs      []string
	AppCredential *AppCredential
}

// BootstrapConfig says what the first start creates and which catalog
// endpoints the control plane serves.
type BootstrapConfig struct {
	// AdminPassword is the admin's password on first start; generated when empty.
	AdminPassword string
	// PublicURL is the control plane's base URL, such as http://127.0.0.1:8080.
	PublicURL string
	// Region is the catalog region, "RegionOne" when empty.
	Region string
	// Services are the catalog entries to ensure, each served under PublicURL+Path.
	Services []ServiceSpec
}

// ServiceSpec is one catalog service the control plane serves.
type ServiceSpec struct {
	Type string // e.g. "identity"
	Name string // e.g. "keystone"
	Path string // e.g. "/identity"
}

// BootstrapResult reports what Bootstrap did.
type BootstrapResult struct {
	// Created is true on the first start only.
	Created bool
	// AdminPassword is set only when Created.
	AdminPassword string
	AdminUserID   string
	AdminProject  string
}

// RegionUpdate changes the non-nil fields of a region.
type RegionUpdate struct {
	Description    *string
	ParentRegionID *string
}

// CatalogServiceUpdate changes the non-nil fields of a catalog service.
type CatalogServiceUpdate struct {
	Type        *string
	Name        *string
	Description *string
	Enabled     *bool
}

// EndpointUpdate changes the non-nil fields of an endpoint.
type EndpointUpdate struct {
	ServiceID *string
	Interface *string
	RegionID  *string
	URL       *string
	Enabled   *bool
}

// EndpointFilter selects endpoints, as GET /v3/endpoints does.
type EndpointFilter struct {
	ServiceID string
	Interface string
	RegionID  string
}

// ImpliedRole says that holding Prior grants Implied too.
type ImpliedRole struct {
	Prior   Role
	Implied Role
}
