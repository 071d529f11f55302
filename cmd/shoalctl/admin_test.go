package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeAdmin serves canned answers by "METHOD path" and records the
// requests' bodies.
func fakeAdmin(t *testing.T, answers map[string]struct {
	status int
	body   string
}) (url string, bodies map[string]string) {
	bodies = map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.RequestURI()
		b, _ := io.ReadAll(r.Body)
		bodies[key] = string(b)
		a, ok := answers[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, bodies
}

type answer = struct {
	status int
	body   string
}

func TestAddRemoveBroker(t *testing.T) {
	url, bodies := fakeAdmin(t, map[string]answer{
		"POST /admin/cluster/brokers":     {200, `{"id":4,"cluster_address":"h4:9093","voter":false}`},
		"DELETE /admin/cluster/brokers/4": {200, `{"id":4,"removed":true}`},
		"DELETE /admin/cluster/brokers/1": {409, `{"error":"broker 1 is the last voter of wal-0"}`},
		"DELETE /admin/cluster/brokers/7": {404, `{"error":"no broker 7"}`},
		"DELETE /admin/cluster/brokers/8": {500, `oops`},
	})
	env := map[string]string{"SHOAL_ADMIN": url}

	code, stdout, stderr := runCtl(env, "cluster", "add-broker", "--id", "4", "--cluster-address", "h4:9093")
	if code != exitOK || !strings.Contains(stdout, "added broker 4") || !strings.Contains(stdout, "voter:") {
		t.Errorf("add-broker: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	var sent map[string]any
	if err := json.Unmarshal([]byte(bodies["POST /admin/cluster/brokers"]), &sent); err != nil || sent["id"] != 4.0 || sent["cluster_address"] != "h4:9093" {
		t.Errorf("add-broker sent %q (%v)", bodies["POST /admin/cluster/brokers"], err)
	}

	code, stdout, _ = runCtl(env, "cluster", "remove-broker", "--id", "4", "--output", "json")
	var got map[string]any
	if code != exitOK || json.Unmarshal([]byte(stdout), &got) != nil || got["removed"] != true {
		t.Errorf("remove-broker --output json: exit %d, stdout %q", code, stdout)
	}

	for id, want := range map[string]string{
		"1": "broker 1 is the last voter of wal-0 (HTTP 409)",
		"7": "no broker 7 (HTTP 404)",
		"8": "oops (HTTP 500)",
	} {
		code, stdout, stderr := runCtl(env, "cluster", "remove-broker", "--id", id)
		if code != exitFailed || stdout != "" || !strings.Contains(stderr, want) {
			t.Errorf("remove-broker --id %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", id, code, stdout, stderr, want)
		}
	}
	code, _, stderr = runCtl(map[string]string{"SHOAL_ADMIN": "127.0.0.1:1"}, "cluster", "remove-broker", "--id", "4")
	if code != exitFailed || !strings.Contains(stderr, "connection refused") {
		t.Errorf("unreachable admin: exit %d, stderr %q", code, stderr)
	}
}

func TestAdminClusterView(t *testing.T) {
	url, _ := fakeAdmin(t, map[string]answer{})
	var errOut bytes.Buffer
	c := &cli{settings: settings{admin: []string{url}}, stderr: &errOut}
	v, err := c.adminCluster(context.Background())
	if v != nil || err != nil || !strings.Contains(errOut.String(), "not served by this broker (404)") {
		t.Fatalf("404: view %s, err %v, stderr %q", v, err, errOut.String())
	}
	url, _ = fakeAdmin(t, map[string]answer{"GET /admin/cluster": {200, `{"leader": 2}` + "\n"}})
	c.admin = []string{url}
	if v, err := c.adminCluster(context.Background()); err != nil || string(v) != `{"leader": 2}` {
		t.Fatalf("200: view %s, err %v", v, err)
	}
}

func TestObjectsCommands(t *testing.T) {
	list := `{"objects":[{"key":"sso/g0/1","size":1100,"kind":"SSO","created_ms":1700000000000,
		"ranges":[{"stream":1,"topic":"a","partition":0,"start_offset":0,"end_offset":10,"position":0,"size":600,"live":true},
		          {"stream":9,"topic":"","partition":0,"start_offset":0,"end_offset":5,"position":600,"size":400,"live":false}]}],
		"count":1,"bytes":1100,"pending_deletes":[]}`
	url, _ := fakeAdmin(t, map[string]answer{
		"GET /admin/objects":         {200, list},
		"GET /admin/objects?topic=a": {200, list},
		"GET /admin/objects/inspect?key=sso%2Fg0%2F1": {200, `{"key":"sso/g0/1","size":1100,"kind":"SSO","footer":{"version":1,"index_position":1000,"index_size":64},
			"streams":[{"stream":1,"topic":"a","partition":0,"start_offset":0,"end_offset":10,"size":600,"blocks":1}],
			"blocks":[{"stream":1,"topic":"a","partition":0,"start_offset":0,"end_offset":10,"stored_size":600,"raw_size":900,"codec":"lz4","batches":2}]}`},
		"GET /admin/storage": {200, `{"requests":{"upload":{"Put":10,"Get":0,"Head":0,"Delete":0,"List":0},"fetch":{"Put":0,"Get":1000,"Head":0,"Delete":0,"List":0}},"objects":1,"object_bytes":1100}`},
	})
	env := map[string]string{"SHOAL_ADMIN": url}
	code, stdout, stderr := runCtl(env, "objects", "list", "--topic", "a")
	if code != exitOK || !strings.Contains(stdout, "a/0[0,10) stream 9[0,5)(dead)") || !strings.Contains(stdout, "1 objects, 1.1 KiB") {
		t.Errorf("objects list: exit %d, stdout:\n%s\nstderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runCtl(env, "objects", "inspect", "sso/g0/1")
	if code != exitOK || !strings.Contains(stdout, "format v1, index at 1000") || !strings.Contains(stdout, "lz4") {
		t.Errorf("objects inspect: exit %d, stdout:\n%s", code, stdout)
	}
	code, _, stderr = runCtl(env, "objects", "inspect", "nope")
	if code != exitFailed || !strings.Contains(stderr, "HTTP 404") {
		t.Errorf("objects inspect nope: exit %d, stderr %q", code, stderr)
	}

	// The counters do not move in the fake: the request rate is 0, the
	// storage is 600 bytes of a, 400 of a deleted topic, 100 of overhead.
	code, stdout, stderr = runCtl(env, "objects", "cost", "--sample", "100ms", "--output", "json", "--storage-price", "1073741824")
	var sheet costSheet
	if code != exitOK || json.Unmarshal([]byte(stdout), &sheet) != nil {
		t.Fatalf("objects cost: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	want := []storageCost{{"(deleted topics)", 400, 400}, {"(overhead)", 100, 100}, {"a", 600, 600}}
	if len(sheet.Storage) != 3 || sheet.Storage[0] != want[0] || sheet.Storage[1] != want[1] || sheet.Storage[2] != want[2] ||
		sheet.StorageCost != 1100 || sheet.RequestCost != 0 || sheet.TotalCost != 1100 {
		t.Errorf("objects cost: %+v", sheet)
	}
}

func TestCostRequests(t *testing.T) {
	s := costSheet{SampleSeconds: 3600}
	s.Prices.PutPer1000, s.Prices.GetPer1000 = 0.005, 0.0004
	s.addRequests(map[string]opCounts{"upload": {Put: 10}},
		map[string]opCounts{"upload": {Put: 20, List: 10}, "fetch": {Get: 900, Head: 100, Delete: 5}})
	// Per hour: upload 20 PUT-class, fetch 1000 GET-class; 730 hours.
	if len(s.Requests) != 2 || s.Requests[1].PutPerMonth != 20*730 || s.Requests[0].GetPerMonth != 1000*730 || s.Requests[0].DeletePerHour != 5 {
		t.Fatalf("requests %+v", s.Requests)
	}
	if want := 20*730/1000.0*0.005 + 1000*730/1000.0*0.0004; s.RequestCost < want-1e-9 || s.RequestCost > want+1e-9 {
		t.Fatalf("request cost %v, want %v", s.RequestCost, want)
	}
}
