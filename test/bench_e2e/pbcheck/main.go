// pbcheck: checks benchsrv's protobuf against the real Kubernetes libraries
// (k8s.io/api and k8s.io/apimachinery v0.37.2). A dev tool, not part of `make test`.
//
// Run it from the repository's root (the modules come from the module cache, offline):
//
//	make build/bench_e2e/benchsrv build/bench_e2e/gen
//	build/bench_e2e/gen /tmp/bench-5000 5000 200
//	cd test/bench_e2e/pbcheck && GOFLAGS=-mod=mod GOPROXY=off go run . \
//	    -benchsrv ../../../build/bench_e2e/benchsrv -data /tmp/bench-5000
//
// It starts benchsrv (twice: with --watchlist, and without it for the 422), asks for
// every pods LIST page, a watch with churn, health events, evictions (DELETED) and a
// 410, a WatchList and the 422, each once with
// `Accept: application/vnd.kubernetes.protobuf, application/json` and once with
// `Accept: application/json`, and checks for each object:
//   - the protobuf decodes with apimachinery's protobuf serializer (LIST, the 410's and
//     the 422's Status) or its length-delimited framer and raw serializer (watch), with
//     the right Content-Type;
//   - Go's own marshaller writes the same bytes again (Unknown, PodList, WatchEvent,
//     Pod, Status: benchsrv writes what kube-apiserver would);
//   - the decoded object equals the one decoded from benchsrv's JSON for the same pod
//     and event (reflect.DeepEqual);
//   - re-encoded as JSON it equals benchsrv's JSON, ignoring field order; the
//     differences (what Go normalizes in the generated JSON) are listed.
//
// Exit status 0 when every check passed (normalizations are printed, not failures).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/framer"
)

const (
	acceptPB   = "application/vnd.kubernetes.protobuf, application/json"
	acceptJSON = "application/json"
	ctPB       = "application/vnd.kubernetes.protobuf"
	ctPBWatch  = "application/vnd.kubernetes.protobuf;stream=watch"
)

var (
	scheme   = runtime.NewScheme()
	pbSer    *protobuf.Serializer
	rawSer   *protobuf.RawSerializer
	failures int
	checked  = map[string]int{}
	norms    = map[string]int{} // JSON path -> count of objects where Go's JSON differs from benchsrv's
	normEx   = map[string]string{}
	mu       sync.Mutex
)

var failedKinds = map[string]int{}

// fail prints the first 10 failures of each kind (the format string).
func fail(format string, a ...any) {
	mu.Lock()
	defer mu.Unlock()
	failures++
	failedKinds[format]++
	if failedKinds[format] <= 10 {
		fmt.Printf("FAIL: "+format+"\n", a...)
	}
}

func count(what string) {
	mu.Lock()
	checked[what]++
	mu.Unlock()
}

// ---- the server ----

type server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	base  string
}

func startServer(bin, data string, args ...string) *server {
	cmd := exec.Command(bin, append([]string{data}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		fmt.Println("cannot start benchsrv:", err)
		os.Exit(2)
	}
	s := &server{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "READY ") {
		fmt.Println("benchsrv did not start")
		os.Exit(2)
	}
	s.base = "http://127.0.0.1:" + strings.Fields(sc.Text())[1]
	go func() {
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	return s
}

// command sends cmd (unless empty) and waits for the line starting with want.
func (s *server) command(cmd, want string, timeout time.Duration) string {
	if cmd != "" {
		fmt.Fprintln(s.stdin, cmd)
	}
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				fail("benchsrv exited")
				return ""
			}
			if strings.HasPrefix(l, want+" ") {
				return l
			}
		case <-deadline:
			fail("no %q from benchsrv after %v", want, timeout)
			return ""
		}
	}
}

func (s *server) stop() {
	fmt.Fprintln(s.stdin, "quit")
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func get(url, accept string) (*http.Response, error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", accept)
	return http.DefaultClient.Do(req)
}

func getAll(url, accept string) (string, []byte, int) {
	resp, err := get(url, accept)
	if err != nil {
		fail("GET %s: %v", url, err)
		return "", nil, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Header.Get("Content-Type"), b, resp.StatusCode
}

// ---- protobuf helpers ----

// fields splits a message into its top-level fields (key, raw value with its length for bytes).
type field struct {
	num  int
	wire int
	val  []byte // the value's bytes (without the length of a length-delimited field)
}

func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

func fields(b []byte) ([]field, bool) {
	var out []field
	for len(b) > 0 {
		k, n := uvarint(b)
		if n == 0 {
			return nil, false
		}
		b = b[n:]
		f := field{num: int(k >> 3), wire: int(k & 7)}
		switch f.wire {
		case 0:
			_, m := uvarint(b)
			if m == 0 {
				return nil, false
			}
			f.val, b = b[:m], b[m:]
		case 2:
			l, m := uvarint(b)
			if m == 0 || uint64(len(b)-m) < l {
				return nil, false
			}
			f.val, b = b[m:m+int(l)], b[m+int(l):]
		default:
			return nil, false
		}
		out = append(out, f)
	}
	return out, true
}

func clip(b []byte) []byte {
	if len(b) > 60 {
		return b[:60]
	}
	return b
}

type marshaler interface{ Marshal() ([]byte, error) }

// leaves lists every place two encodings of a message differ, descending into nested
// messages: "path: benchsrv's bytes, Go's bytes" (path like .2[0].8[1]: field 2, in it the
// second field 8).
type leaf struct {
	path      string
	got, want []byte
}

func leaves(got, want []byte, path string, out *[]leaf) {
	g, ok1 := fields(got)
	w, ok2 := fields(want)
	if !ok1 || !ok2 || len(g) != len(w) {
		*out = append(*out, leaf{path, got, want})
		return
	}
	seen := map[int]int{}
	for i := range g {
		p := fmt.Sprintf("%s.%d[%d]", path, g[i].num, seen[g[i].num])
		seen[g[i].num]++
		if g[i].num != w[i].num || g[i].wire != w[i].wire {
			*out = append(*out, leaf{path, got, want})
			return
		}
		if !bytes.Equal(g[i].val, w[i].val) {
			if g[i].wire == 2 {
				leaves(g[i].val, w[i].val, p, out)
			} else {
				*out = append(*out, leaf{p, g[i].val, w[i].val})
			}
		}
	}
}

// sameBytes: Go's marshaller writes exactly what benchsrv sent, but for resource.Quantity
// strings Go writes in canonical form ("4000m" -> "4"): benchsrv keeps the dataset's
// strings, the same as its JSON has (counted as normalizations).
func sameBytes(what string, obj marshaler, got []byte) {
	want, err := obj.Marshal()
	if err != nil {
		fail("%s: Marshal: %v", what, err)
		return
	}
	kind := strings.Fields(what)[0]
	if bytes.Equal(got, want) {
		count("bytes exactly as Go writes them: " + kind)
		return
	}
	var ls []leaf
	leaves(got, want, "", &ls)
	for _, l := range ls {
		a, err1 := resource.ParseQuantity(string(l.got))
		b, err2 := resource.ParseQuantity(string(l.want))
		if err1 == nil && err2 == nil && a.Cmp(b) == 0 {
			mu.Lock()
			k := fmt.Sprintf("%s: resource.Quantity %q written %q by Go (canonical)", kind, l.got, l.want)
			norms[k]++
			mu.Unlock()
			continue
		}
		fail("%s: not the bytes Go writes (%d vs %d bytes) at %s: %q (benchsrv) vs %q (Go)", what, len(got),
			len(want), l.path, clip(l.got), clip(l.want))
		return
	}
	count("bytes as Go writes them but for canonical Quantity strings: " + kind)
}

// decodeObject: "k8s\0" + Unknown: checks the wrapper, decodes with the protobuf serializer.
func decodeObject(what string, b []byte, into runtime.Object, kind string) []byte {
	if !bytes.HasPrefix(b, []byte("k8s\x00")) {
		fail("%s: no k8s\\0 prefix", what)
		return nil
	}
	var u runtime.Unknown
	if err := u.Unmarshal(b[4:]); err != nil {
		fail("%s: Unknown: %v", what, err)
		return nil
	}
	if u.APIVersion != "v1" || u.Kind != kind || u.ContentEncoding != "" || u.ContentType != "" {
		fail("%s: Unknown %+v", what, u.TypeMeta)
	}
	sameBytes("Unknown "+what, &u, b[4:])
	obj, gvk, err := pbSer.Decode(b, nil, into)
	if err != nil {
		fail("%s: protobuf serializer: %v", what, err)
		return nil
	}
	if gvk.Kind != kind || obj != into {
		fail("%s: decoded %v", what, gvk)
	}
	return u.Raw
}

// ---- JSON comparison ----

// compareJSON: Go's JSON of obj against benchsrv's (field order ignored); differences are
// recorded as normalizations by path (array indices dropped).
func compareJSON(obj any, served []byte, kind string) {
	mine, err := json.Marshal(obj)
	if err != nil {
		fail("json.Marshal: %v", err)
		return
	}
	var a, b any
	if json.Unmarshal(mine, &a) != nil || json.Unmarshal(served, &b) != nil {
		fail("JSON does not parse")
		return
	}
	// The served JSON of an item has no kind/apiVersion; Go's has none either (TypeMeta empty).
	if m, ok := b.(map[string]any); ok {
		delete(m, "kind")
		delete(m, "apiVersion")
	}
	if m, ok := a.(map[string]any); ok {
		delete(m, "kind")
		delete(m, "apiVersion")
	}
	found := map[string]string{}
	walkDiff(a, b, kind, found)
	mu.Lock()
	for p, ex := range found {
		norms[p]++
		if _, ok := normEx[p]; !ok {
			normEx[p] = ex
		}
	}
	mu.Unlock()
	count("JSON compared: " + kind)
}

func walkDiff(a, b any, path string, found map[string]string) {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			found[path] = fmt.Sprintf("Go %v, benchsrv %v", short(a), short(b))
			return
		}
		for k, v := range x {
			if w, ok := y[k]; ok {
				walkDiff(v, w, path+"."+k, found)
			} else {
				found[path+"."+k] = fmt.Sprintf("Go writes %v, benchsrv nothing", short(v))
			}
		}
		for k, w := range y {
			if _, ok := x[k]; !ok {
				found[path+"."+k] = fmt.Sprintf("benchsrv writes %v, Go nothing", short(w))
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			found[path] = fmt.Sprintf("Go %v, benchsrv %v", short(a), short(b))
			return
		}
		for i := range x {
			walkDiff(x[i], y[i], path+"[]", found)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			found[path] = fmt.Sprintf("Go %v, benchsrv %v", short(a), short(b))
		}
	}
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// ---- LIST ----

func listAll(s *server, label string) []string {
	var names []string
	cont := ""
	for page := 0; ; page++ {
		q := "/api/v1/pods?limit=500"
		if cont != "" {
			q += "&continue=" + cont
		}
		ct, pb, code := getAll(s.base+q, acceptPB)
		_, js, code2 := getAll(s.base+q, acceptJSON)
		if code != 200 || code2 != 200 || ct != ctPB {
			fail("LIST %s: status %d/%d, Content-Type %q", q, code, code2, ct)
			return names
		}
		var pl corev1.PodList
		raw := decodeObject("LIST", pb, &pl, "PodList")
		if raw == nil {
			return names
		}
		sameBytes("PodList", &pl, raw)
		var jl corev1.PodList
		var jraw struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(js, &jl); err != nil || json.Unmarshal(js, &jraw) != nil {
			fail("LIST JSON: %v", err)
			return names
		}
		if !reflect.DeepEqual(pl.ListMeta, jl.ListMeta) {
			fail("LIST %s: ListMeta %+v (protobuf) vs %+v (JSON)", q, pl.ListMeta, jl.ListMeta)
		}
		if len(pl.Items) != len(jl.Items) {
			fail("LIST %s: %d items (protobuf) vs %d (JSON)", q, len(pl.Items), len(jl.Items))
			return names
		}
		// Each item's bytes as Go writes them.
		fs, _ := fields(raw)
		k := 0
		for _, f := range fs {
			if f.num == 2 {
				sameBytes("Pod (LIST item)", &pl.Items[k], f.val)
				k++
			}
		}
		for i := range pl.Items {
			if !equality.Semantic.DeepEqual(pl.Items[i], jl.Items[i]) {
				fail("LIST %s item %d (%s): protobuf and JSON decode differently: %s", q, i, pl.Items[i].Name,
					goDiff(&pl.Items[i], &jl.Items[i]))
			}
			count("pods equal from protobuf and JSON: LIST " + label)
			compareJSON(&pl.Items[i], jraw.Items[i], "Pod")
			names = append(names, pl.Items[i].Namespace+"/"+pl.Items[i].Name)
		}
		cont = pl.Continue
		if cont == "" {
			return names
		}
	}
}

// ---- WATCH ----

type event struct {
	typ   string
	obj   runtime.Object
	json  []byte // the JSON stream's object
	frame []byte
}

// watchPB reads protobuf watch events into ch until the stream ends or stop.
func watchPB(url string, ch chan<- event, ready chan<- struct{}) {
	defer close(ch)
	resp, err := get(url, acceptPB)
	if err != nil {
		fail("watch %s: %v", url, err)
		close(ready)
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != ctPBWatch {
		fail("watch: Content-Type %q", ct)
	}
	close(ready)
	fr := framer.NewLengthDelimitedFrameReader(resp.Body)
	buf := make([]byte, 1<<20)
	for {
		n, err := readFrame(fr, buf)
		if err != nil {
			return
		}
		frame := append([]byte(nil), buf[:n]...)
		var we metav1.WatchEvent
		if _, _, err := rawSer.Decode(frame, nil, &we); err != nil {
			fail("watch frame: raw serializer: %v", err)
			return
		}
		sameBytes("WatchEvent", &we, frame)
		var obj runtime.Object
		kind := "Pod"
		if we.Type == "ERROR" {
			obj, kind = &metav1.Status{}, "Status"
		} else {
			obj = &corev1.Pod{}
		}
		raw := decodeObject("watch "+we.Type, we.Object.Raw, obj, kind)
		if raw == nil {
			return
		}
		sameBytes(kind+" (watch "+we.Type+")", obj.(marshaler), raw)
		ch <- event{typ: we.Type, obj: obj, frame: frame}
	}
}

func readFrame(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.ErrShortBuffer {
			continue
		}
		return n, err
	}
}

func watchJSON(url string, ch chan<- event, ready chan<- struct{}) {
	defer close(ch)
	resp, err := get(url, acceptJSON)
	if err != nil {
		fail("watch %s: %v", url, err)
		close(ready)
		return
	}
	defer resp.Body.Close()
	close(ready)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			fail("JSON watch line: %v", err)
			return
		}
		var obj runtime.Object = &corev1.Pod{}
		if ev.Type == "ERROR" {
			obj = &metav1.Status{}
		}
		if err := json.Unmarshal(ev.Object, obj); err != nil {
			fail("JSON watch object: %v", err)
			return
		}
		ch <- event{typ: ev.Type, obj: obj, json: ev.Object}
	}
}

// next reads one event, or fails on timeout / end.
func next(label, enc string, c <-chan event, deadline <-chan time.Time) (event, bool) {
	select {
	case e, ok := <-c:
		if !ok {
			fail("%s: %s watch ended early", label, enc)
		}
		return e, ok
	case <-deadline:
		fail("%s: %s watch timed out", label, enc)
		return event{}, false
	}
}

// compareEvents: the same events in both streams, in order, until stop(event of the protobuf
// stream) says so. Periodic bookmarks come at each connection's own time: they are checked
// on their own (bytes as Go writes them, in watchPB), not paired, except the one that ends
// a WatchList's initial events. A 410 ERROR may cut one stream a few events before the other
// (each connection had sent what it had when the server cut them).
func compareEvents(label string, pbc, jc <-chan event, timeout time.Duration, stop func(e event) bool) {
	deadline := time.After(timeout)
	n := 0
	for {
		p, ok := next(label, "protobuf", pbc, deadline)
		if !ok {
			return
		}
		endBookmark := false
		if p.typ == "BOOKMARK" {
			endBookmark = p.obj.(*corev1.Pod).Annotations["k8s.io/initial-events-end"] == "true"
			if !endBookmark {
				count("plain bookmarks (protobuf, not paired): " + label)
				if stop(p) {
					return
				}
				continue
			}
		}
		var j event
		for {
			if j, ok = next(label, "JSON", jc, deadline); !ok {
				return
			}
			if j.typ != "BOOKMARK" || j.obj.(*corev1.Pod).Annotations["k8s.io/initial-events-end"] == "true" {
				break
			}
		}
		if p.typ != j.typ && (p.typ == "ERROR" || j.typ == "ERROR") {
			// Cut at different points: read on to the other stream's ERROR.
			c, enc := pbc, "protobuf"
			if p.typ == "ERROR" {
				c, enc = jc, "JSON"
			}
			skipped := 0
			for e := (event{}); e.typ != "ERROR"; skipped++ {
				if e, ok = next(label, enc, c, deadline); !ok {
					return
				}
			}
			count(fmt.Sprintf("410: events one stream had before its ERROR and the other not: %s", label))
			fmt.Printf("%s: the %s stream had %d events more before its ERROR\n", label, enc, skipped-1)
			if p.typ != "ERROR" {
				p = event{typ: "ERROR"}
			}
			return
		}
		if p.typ != j.typ {
			fail("%s: event %d: %s (protobuf) vs %s (JSON)", label, n, p.typ, j.typ)
		} else if !equality.Semantic.DeepEqual(p.obj, j.obj) {
			fail("%s: event %d (%s): protobuf and JSON decode differently: %s", label, n, p.typ, goDiff(p.obj, j.obj))
		} else {
			count(fmt.Sprintf("events equal from protobuf and JSON: %s %s", label, p.typ))
		}
		kind := "Pod"
		if p.typ == "ERROR" {
			kind = "Status"
		}
		compareJSON(p.obj, j.json, kind+" ("+p.typ+")")
		n++
		if stop(p) {
			return
		}
	}
}

// goDiff: where two decoded objects differ, by their JSON.
func goDiff(a, b any) string {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var x, y any
	json.Unmarshal(ja, &x)
	json.Unmarshal(jb, &y)
	found := map[string]string{}
	walkDiff(x, y, "", found)
	if len(found) == 0 {
		return "same JSON (internal representation differs)"
	}
	return fmt.Sprint(found)
}

func unhealthy(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		for _, rs := range cs.AllocatedResourcesStatus {
			for _, r := range rs.Resources {
				if r.Health == "Unhealthy" {
					return true
				}
			}
		}
	}
	return false
}

func evict(s *server, p *corev1.Pod) {
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/eviction", s.base, p.Namespace, p.Name)
	body := fmt.Sprintf(`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":%q,"namespace":%q}}`,
		p.Name, p.Namespace)
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		fail("eviction: %v", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		fail("eviction of %s: %d", p.Name, resp.StatusCode)
	}
}

func openWatches(s *server, query string) (chan event, chan event) {
	pbc, jc := make(chan event, 100000), make(chan event, 100000)
	r1, r2 := make(chan struct{}), make(chan struct{})
	go watchPB(s.base+"/api/v1/pods?"+query, pbc, r1)
	go watchJSON(s.base+"/api/v1/pods?"+query, jc, r2)
	<-r1
	<-r2
	return pbc, jc
}

func main() {
	bin := flag.String("benchsrv", "build/bench_e2e/benchsrv", "the benchsrv binary")
	data := flag.String("data", "", "the directory gen wrote (gen DIR PODS NODES)")
	flag.Parse()
	if *data == "" {
		fmt.Println("usage: pbcheck -benchsrv BIN -data DIR")
		os.Exit(2)
	}
	corev1.AddToScheme(scheme)
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	pbSer = protobuf.NewSerializer(scheme, scheme)
	rawSer = protobuf.NewRawSerializer(scheme, scheme)

	s := startServer(*bin, *data, "--watchlist")
	defer s.stop()

	// 1. LIST, every page.
	names := listAll(s, "as generated")
	fmt.Printf("LIST: %d pods in both encodings\n", len(names))

	// 2. A watch from the LIST's resourceVersion, churn and health events, 3 of the 4 unhealthy
	// pods evicted (DELETED), the 4th left Unhealthy for the next LIST.
	_, js, _ := getAll(s.base+"/api/v1/pods?limit=1", acceptJSON)
	var l1 corev1.PodList
	json.Unmarshal(js, &l1)
	pbc, jc := openWatches(s, "watch=true&allowWatchBookmarks=true&resourceVersion="+l1.ResourceVersion)
	fmt.Fprintln(s.stdin, "phase rate=400 ms=1500 health=4 fail=0 grace_ms=1500")
	evicted, deleted, sick := 0, 0, 0
	compareEvents("watch", pbc, jc, 20*time.Second, func(e event) bool {
		if e.typ == "BOOKMARK" {
			return deleted == 3 && sick == 4
		}
		if p, ok := e.obj.(*corev1.Pod); ok {
			if e.typ == "MODIFIED" && unhealthy(p) {
				sick++
				if evicted < 3 {
					evicted++
					evict(s, p)
				}
			}
			if e.typ == "DELETED" {
				deleted++
			}
		}
		return false
	})
	s.command("", "result", 10*time.Second) // the phase is over
	fmt.Printf("watch: %d Unhealthy, %d DELETED, then a BOOKMARK, in both encodings\n", sick, deleted)

	// 3. LIST again: pods with a new resourceVersion, one Unhealthy, three gone.
	names2 := listAll(s, "after events")
	fmt.Printf("LIST after the events: %d pods\n", len(names2))

	// 4. WatchList: every pod ADDED, then the bookmark that ends the initial events.
	pbw, jw := openWatches(s, "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
	added := 0
	compareEvents("WatchList", pbw, jw, 60*time.Second, func(e event) bool {
		if e.typ == "ADDED" {
			added++
		}
		if e.typ == "BOOKMARK" {
			p := e.obj.(*corev1.Pod)
			if p.Annotations["k8s.io/initial-events-end"] != "true" {
				fail("WatchList bookmark without k8s.io/initial-events-end: %v", p.Annotations)
			}
			return true
		}
		return false
	})
	fmt.Printf("WatchList: %d ADDED and the initial-events-end bookmark in both encodings\n", added)

	// 5. 410: the open watches get an ERROR event, and a watch from the old resourceVersion
	// gets one at once.
	s.command("phase rate=100 ms=600 health=0 gone=1 grace_ms=100", "result", 10*time.Second)
	compareEvents("410", pbw, jw, 10*time.Second, func(e event) bool {
		if e.typ == "ERROR" {
			st := e.obj.(*metav1.Status)
			if st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
				fail("410: %+v", st)
			}
			return true
		}
		return false
	})
	pbg, jg := openWatches(s, "watch=true&resourceVersion="+l1.ResourceVersion)
	compareEvents("watch from a compacted resourceVersion", pbg, jg, 10*time.Second, func(e event) bool {
		return e.typ == "ERROR"
	})
	fmt.Println("410: ERROR events (Status) in both encodings")

	// 6. The 422 of a server without WatchList, as a protobuf Status.
	s2 := startServer(*bin, *data)
	ct, b, code := getAll(s2.base+"/api/v1/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", acceptPB)
	var st metav1.Status
	if code != 422 || ct != ctPB {
		fail("422: status %d, Content-Type %q", code, ct)
	} else if raw := decodeObject("422", b, &st, "Status"); raw != nil {
		sameBytes("Status (422)", &st, raw)
		fmt.Printf("422: %q\n", st.Message)
	}
	// Nodes stay JSON even when protobuf is asked for.
	ct, _, _ = getAll(s2.base+"/api/v1/nodes?limit=1", acceptPB)
	if ct != "application/json" {
		fail("nodes: Content-Type %q", ct)
	}
	fmt.Println(strings.TrimSpace(s2.command("stats", "stats", 5*time.Second)))
	s2.stop()
	fmt.Println(strings.TrimSpace(s.command("stats", "stats", 5*time.Second)))

	fmt.Println("\nchecked:")
	var keys []string
	for k := range checked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %-70s %d\n", k, checked[k])
	}
	fmt.Println("\nWhat Go normalizes (protobuf bytes Go writes, or Go's JSON of the decoded object vs benchsrv's JSON), objects:")
	keys = keys[:0]
	for k := range norms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %-60s %6d  e.g. %s\n", k, norms[k], normEx[k])
	}
	if failures > 0 {
		fmt.Printf("\npbcheck: %d FAILURES\n", failures)
		os.Exit(1)
	}
	fmt.Println("\npbcheck: OK")
}
