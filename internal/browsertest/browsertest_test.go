package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
)

// TestBrowserRunsScriptAndKeyboard proves the harness drives a real browser:
// it loads a page, presses keys, clicks, types and reads what the page's
// script painted.
func TestBrowserRunsScriptAndKeyboard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>t</title><p id="n">0</p><input id="q"><button id="b">go</button><p id="echo"></p>
<script>let n=0;document.addEventListener('keydown',e=>{if(e.key==='ArrowRight'){n++;document.getElementById('n').textContent=n}});
document.getElementById('b').onclick=()=>{document.getElementById('echo').textContent='said '+document.getElementById('q').value}</script>`)
	}))
	defer srv.Close()
	p := New(t, Narrow, 20*time.Second)
	p.Go(srv.URL)
	p.Key(kb.ArrowRight + kb.ArrowRight)
	if got := p.Text("#n"); got != "2" {
		t.Errorf("after two arrow keys the page shows %q, want 2", got)
	}
	p.Type("#q", "licences 授權")
	p.Click("#b")
	if got := p.Text("#echo"); got != "said licences 授權" {
		t.Errorf("after typing and clicking the page shows %q", got)
	}
	if !p.Has("#echo") || p.Has("#missing") || p.Count("p") != 2 {
		t.Errorf("Has/Count disagree with the page")
	}
	if got := Eval[float64](p, "1+1"); got != 2 {
		t.Errorf("Eval(1+1) = %v", got)
	}
	p.Screenshot("harness-selftest")
}
