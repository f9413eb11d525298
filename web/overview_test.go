package web

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestOverviewQuotaAndUsage(t *testing.T) {
	e := newAdminPagesEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	alice := e.client()
	alice.login("alice", "alice-Secret-1")

	// Nothing used yet; the period report says what to do.
	r := alice.get("/project/overview")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="overview-quotas"`, "0 of 10", "0 of 20", "0 MiB of 51200 MiB", "Floating IPs", "Security groups",
		"Networks", `id="usage-period"`, `for="f-start"`, `for="f-end"`, "No instances ran in this period")
	today := time.Now().UTC()
	wantContains(t, r, `value="`+today.Format("2006-01-02")+`"`, `value="`+today.AddDate(0, 0, -30).Format("2006-01-02")+`"`)

	id := e.boot(e.userCtx("alice", "alice-Secret-1", pa.ID), "usage-1")
	r = alice.get("/project/overview", hx)
	wantStatus(t, r, http.StatusOK)
	if isFullPage(r.body) {
		t.Fatal("htmx answer is a full page")
	}
	wantContains(t, r, `id="quota-instances"`, "1 of 10", "1 of 20", "128 MiB of 51200 MiB", `id="usage-totals"`,
		"Instance-hours", "vCPU-hours", "RAM MB-hours", "Disk GB-hours", `id="usage-servers"`, "usage-1", id, "m1.tiny")
	wantNotContains(t, r, "No instances ran in this period")
	for _, bar := range []string{"floatingip", "security_group", "network"} {
		if !strings.Contains(r.body, `id="quota-`+bar+`"`) {
			t.Fatalf("no %s bar:\n%s", bar, r.body)
		}
	}

	// A period long before the instance has none of it.
	r = alice.get("/project/overview?start=2001-01-01&end=2001-01-31")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `value="2001-01-01"`, "No instances ran in this period", "<dd>0.00</dd>")
	wantNotContains(t, r, `id="usage-servers"`)

	// A date that is not one is refused beside its field; an end before the
	// start is the service's refusal, in its words.
	r = alice.get("/project/overview?start=yesterday")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Enter the start date as YYYY-MM-DD.", `aria-invalid="true"`)
	wantNotContains(t, r, `id="usage-totals"`)
	r = alice.get("/project/overview?start=2020-02-01&end=2020-01-01")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "The start time cannot occur after the end time.")
	wantNotContains(t, r, `id="usage-totals"`)
}

func TestOverviewWithoutServicesHasNoUsage(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()
	r := c.get("/project/overview")
	wantStatus(t, r, http.StatusOK)
	wantNotContains(t, r, `id="overview-quotas"`, `id="overview-usage"`, `href="/admin/overview"`, `href="/admin/quotas"`)
	// Without compute, /admin leads to the system information.
	r = c.get("/admin")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); loc != "/admin/system" {
		t.Fatalf("/admin redirects to %q", loc)
	}
}
