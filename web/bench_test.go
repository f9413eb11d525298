package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
)

// fillProject gives project (through alice) one real instance and n-1
// copies of its row, so the list pages have n instances without n boots.
func fillProject(b *testing.B, e *cenv, actx context.Context, n int) string {
	id := e.bootActive(actx, "bench-0")
	rows, err := e.db.QueryContext(context.Background(), `SELECT name FROM pragma_table_info('instances')`)
	if err != nil {
		b.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			b.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	var sel []string
	for _, c := range cols {
		switch c {
		case "uuid", "display_name", "hostname", "reservation_id", "seq":
			sel = append(sel, "?")
		default:
			sel = append(sel, c)
		}
	}
	q := `INSERT INTO instances (` + strings.Join(cols, ", ") + `) SELECT ` + strings.Join(sel, ", ") + ` FROM instances WHERE uuid = ?`
	for i := 1; i < n; i++ {
		args := []any{}
		for _, c := range cols {
			switch c {
			case "uuid":
				args = append(args, uuid.NewString())
			case "display_name", "hostname":
				args = append(args, fmt.Sprintf("bench-%d", i))
			case "reservation_id":
				args = append(args, fmt.Sprintf("r-%d", i))
			case "seq":
				args = append(args, 1_000_000+i)
			}
		}
		if _, err := e.db.ExecContext(context.Background(), q, append(args, id)...); err != nil {
			b.Fatal(err)
		}
	}
	return id
}

// BenchmarkInstancesPage1000 is the server time to render the instances
// page of a project with 1,000 instances: the default page (20 rows) and
// the largest page (200 rows).
func BenchmarkInstancesPage1000(b *testing.B) {
	e := newComputeEnv(b)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	fillProject(b, e, e.userCtx("alice", "alice-Secret-1", pa.ID), 1000)
	alice := e.client()
	alice.login("alice", "alice-Secret-1")
	for _, path := range []string{"/project/instances", "/project/instances?limit=200"} {
		b.Run(strings.TrimPrefix(path, "/project/instances"), func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.AddCookie(&http.Cookie{Name: SessionCookie, Value: alice.sessionCookie()})
			for i := 0; i < b.N; i++ {
				rec := httptest.NewRecorder()
				e.web.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "bench-") {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkFanOut100 is the time from one instance status change to its
// row arriving at the last of 100 connected viewers of the project.
func BenchmarkFanOut100(b *testing.B) {
	e := newComputeEnv(b)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	id := fillProject(b, e, e.userCtx("alice", "alice-Secret-1", pa.ID), 1)
	alice := e.client()
	alice.login("alice", "alice-Secret-1")
	conns := make([]*websocket.Conn, 100)
	for i := range conns {
		c, _, err := e.dialLive(alice, "/project/instances", e.srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for len(e.web.hub.snapshot()) < len(conns) {
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, msg, err := c.ReadMessage(); err != nil || !strings.Contains(string(msg), id) {
					b.Errorf("viewer: %v %.80s", err, msg)
				}
			}()
		}
		e.bus.Publish(events.Event{Kind: events.KindInstance, ID: id, ProjectID: pa.ID, VMState: compute.VMActive})
		wg.Wait()
	}
}
