package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/i18n"
)

// A problem's detail is built in English from a literal format and
// translated by that format (api/problem.go localized). This file finds
// every such format in the module's source and fails when one has no
// French or Chinese text: a missing translation is a failing test, never a
// silent English answer. It also fails on a detail it cannot see (a format
// that is not a literal, a detail put together by hand), so that nobody
// slips one past it.

// detailConstructors are the functions that build a problem's detail, by
// package and name, with the index of their format argument. A constructor's
// own body passes its format through and is not checked; its callers are.
var detailConstructors = map[string]int{
	"domain.Errorf":       2,
	"domain.invalid":      1,
	"domain.notFound":     0,
	"domain.ruleErr":      2,
	"api.httpErrorf":      3,
	"api.invalidRequest":  1,
	"api.unauthenticated": 0,
	"api.importProblemf":  2,
	"queries.notFound":    0,
	"queries.invalid":     1,
	"queries.unavailable": 0,
}

// phraseParams are the parameters of type domain.Phrase: English words an
// argument of a detail carries, translated with it (authorize's "assign
// licenses"). A literal there is a key; a variable is a Phrase already.
var phraseParams = map[string]int{
	"domain.authorize":     1,
	"domain.authorizeOver": 1,
	"domain.vendorManaged": 1,
	"domain.ended":         1,
	"domain.manageable":    1,
	"api.requireRoles":     0,
	"domain.badUPN":        0,
}

// problemTypes are the types whose Detail (or Reason) member is a detail,
// with the package that defines them.
var problemTypes = map[string]string{
	"Error": "domain", "HTTPError": "api", "Problem": "api", "ImportProblem": "api", "UnavailableError": "queries",
}

// detailBuilders may compute a detail: they translate one already built.
var detailBuilders = []string{"localized", "boundDetail"}

// detailScan is what scanDetails found.
type detailScan struct {
	keys    map[string][]string // English format or literal → where
	phrases map[string][]string // Phrase literal → where
	bad     []string            // details the scan cannot see
}

func TestEveryProblemDetailIsTranslated(t *testing.T) {
	scan := scanDetails(t, "..")
	for _, b := range scan.bad {
		t.Errorf("%s", b)
	}
	if len(scan.keys) < 150 {
		t.Fatalf("the scan found only %d details: is it still reading the source?", len(scan.keys))
	}
	// A problem without a detail shows its title: titles are details too.
	for code, title := range titleByCode {
		scan.keys[title] = append(scan.keys[title], "titleByCode["+string(code)+"]")
	}
	check := func(kind string, found map[string][]string) {
		for _, k := range sortedKeys(found) {
			where := found[k][0]
			if en, ok := problemTextEN(k); !ok || en != k {
				t.Errorf("%s: %s %q is not in locales/problems.en.json as itself", where, kind, k)
			}
			for _, l := range i18n.Supported[1:] {
				if !problemTexts.Has(l, k) {
					t.Errorf("%s: %s %q has no %s text in locales/problems.%s.json", where, kind, k, l, l)
				}
			}
			if kind == "detail" && !hasWords(k) {
				t.Errorf("%s: format %q has no words of its own to translate: write the sentence in the format", where, k)
			}
		}
	}
	check("detail", scan.keys)
	check("phrase", scan.phrases)
	for _, m := range problemTexts.Missing() {
		t.Errorf("catalog: %s", m)
	}
	for _, k := range problemTexts.Keys() {
		if _, ok := scan.keys[k]; !ok {
			if _, ok := scan.phrases[k]; !ok {
				t.Errorf("locales: %q is no detail or phrase of the code any more: remove it", k)
			}
		}
	}
}

// TestTheScanSeesWhatItMust feeds the scan a package with one of each kind
// of detail, so that a scan that stops seeing them fails here rather than
// letting untranslated details through.
func TestTheScanSeesWhatItMust(t *testing.T) {
	dir := t.TempDir()
	src := `package domain

import "fmt"

const known = "a constant detail"

func f(s string, what Phrase) error {
	_ = invalid("x", "literal %s format", s)
	_ = ruleErr(CodeX, "R1", "one "+"joined", s)
	_ = notFound(s)
	_ = &Error{Detail: fmt.Sprintf("built %s", s)}
	_ = &Error{Detail: "a literal detail"}
	_ = &Error{Detail: known}
	_ = Phrase("a phrase")
	_ = Phrase(s)
	dec.authorize("R1", "assign things")
	dec.authorize("R1", what)
	e := &Error{}
	e.Detail = "assigned " + s
	return nil
}
`
	if err := os.MkdirAll(filepath.Join(dir, "domain"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "domain", "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	scan := scanDetails(t, dir)
	for _, k := range []string{"literal %s format", "one joined", "a literal detail", "a constant detail"} {
		if _, ok := scan.keys[k]; !ok {
			t.Errorf("the scan missed the detail %q; found %v", k, sortedKeys(scan.keys))
		}
	}
	for _, k := range []string{"a phrase", "assign things"} {
		if _, ok := scan.phrases[k]; !ok {
			t.Errorf("the scan missed the phrase %q; found %v", k, sortedKeys(scan.phrases))
		}
	}
	bad := strings.Join(scan.bad, "\n")
	for _, want := range []string{"x.go:10", "x.go:11", "x.go:15", "x.go:19"} {
		if !strings.Contains(bad, want+":") {
			t.Errorf("the scan did not refuse the hidden detail at %s; refused:\n%s", want, bad)
		}
	}
	if len(scan.bad) != 4 {
		t.Errorf("the scan refused %d details, want 4:\n%s", len(scan.bad), bad)
	}
}

func problemTextEN(k string) (string, bool) {
	if !problemTexts.Has(i18n.English, k) {
		return "", false
	}
	return problemTexts.T(i18n.English, k), true
}

// hasWords reports whether a format says something besides its verbs.
func hasWords(format string) bool {
	letters := 0
	for i := 0; i < len(format); i++ {
		if format[i] == '%' {
			i++
			for i < len(format) && strings.IndexByte("+-# 0123456789.[]*", format[i]) >= 0 {
				i++
			}
			continue
		}
		if c := format[i] | 0x20; c >= 'a' && c <= 'z' {
			letters++
		}
	}
	return letters >= 3
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// scanDetails reads every non-test Go file under root (the module) and
// collects the details it builds.
func scanDetails(t *testing.T, root string) detailScan {
	t.Helper()
	scan := detailScan{keys: map[string][]string{}, phrases: map[string][]string{}}
	fset := token.NewFileSet()
	byPkg := map[string][]*ast.File{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".") || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		byPkg[filepath.Dir(p)] = append(byPkg[filepath.Dir(p)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, files := range byPkg {
		consts := map[string]string{}
		for _, f := range files {
			for _, decl := range f.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							if s, ok := stringLit(vs.Values[i], nil); ok {
								consts[name.Name] = s
							}
						}
					}
				}
			}
		}
		for _, f := range files {
			(&fileScan{scan: &scan, fset: fset, file: f, pkg: f.Name.Name, consts: consts}).run()
		}
	}
	slices.Sort(scan.bad)
	return scan
}

type fileScan struct {
	scan    *detailScan
	fset    *token.FileSet
	file    *ast.File
	pkg     string
	consts  map[string]string
	imports map[string]string // local name → package name (last path element)
}

func (s *fileScan) run() {
	s.imports = map[string]string{}
	for _, im := range s.file.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := path.Base(p)
		if im.Name != nil {
			s.imports[im.Name.Name] = name
		} else {
			s.imports[name] = name
		}
	}
	for _, decl := range s.file.Decls {
		if fd, ok := decl.(*ast.FuncDecl); ok {
			if _, ctor := detailConstructors[s.pkg+"."+fd.Name.Name]; ctor {
				continue // its callers are checked
			}
		}
		ast.Inspect(decl, s.visit)
	}
}

func (s *fileScan) where(n ast.Node) string {
	p := s.fset.Position(n.Pos())
	return filepath.Base(filepath.Dir(p.Filename)) + "/" + filepath.Base(p.Filename) + ":" + strconv.Itoa(p.Line)
}

func (s *fileScan) refuse(n ast.Node, why string) {
	s.scan.bad = append(s.scan.bad, s.where(n)+": "+why)
}

// name resolves a called function or a type to package.name.
func (s *fileScan) name(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return s.pkg + "." + x.Name
	case *ast.SelectorExpr:
		if id, ok := x.X.(*ast.Ident); ok {
			if pkg, ok := s.imports[id.Name]; ok {
				return pkg + "." + x.Sel.Name
			}
		}
		return s.pkg + "." + x.Sel.Name // a method
	case *ast.StarExpr:
		return s.name(x.X)
	}
	return ""
}

func (s *fileScan) visit(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.CallExpr:
		fn := s.name(x.Fun)
		if i, ok := detailConstructors[fn]; ok && i < len(x.Args) {
			if k, ok := stringLit(x.Args[i], s.consts); ok {
				s.scan.keys[k] = append(s.scan.keys[k], s.where(x))
			} else {
				s.refuse(x, fn+": the format must be a literal (it is the translation's key)")
			}
		}
		if i, ok := phraseParams[fn]; ok && i < len(x.Args) {
			if k, ok := stringLit(x.Args[i], s.consts); ok {
				s.scan.phrases[k] = append(s.scan.phrases[k], s.where(x))
			} else if _, isIdent := x.Args[i].(*ast.Ident); !isIdent {
				s.refuse(x, fn+": a phrase must be a literal or a Phrase variable")
			}
		}
		if fn == "domain.Phrase" && len(x.Args) == 1 {
			if k, ok := stringLit(x.Args[0], s.consts); ok {
				s.scan.phrases[k] = append(s.scan.phrases[k], s.where(x))
			} else {
				s.refuse(x, "Phrase of a non-literal: the translation test cannot see it")
			}
		}
	case *ast.CompositeLit:
		if !s.isProblemType(x.Type) {
			return true
		}
		for _, el := range x.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			if key, ok := kv.Key.(*ast.Ident); ok && (key.Name == "Detail" || key.Name == "Reason") {
				s.detailValue(kv.Value)
			}
		}
	case *ast.AssignStmt:
		for i, lhs := range x.Lhs {
			sel, ok := lhs.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Detail" && sel.Sel.Name != "Reason") || i >= len(x.Rhs) {
				continue
			}
			s.detailValue(x.Rhs[i])
		}
	}
	return true
}

// detailValue checks a value given to a Detail: a literal (a key), a
// copy of another error's member, or a translation.
func (s *fileScan) detailValue(v ast.Expr) {
	if k, ok := stringLit(v, s.consts); ok {
		s.scan.keys[k] = append(s.scan.keys[k], s.where(v))
		return
	}
	switch x := v.(type) {
	case *ast.SelectorExpr:
		return // a copy of a detail built elsewhere
	case *ast.CallExpr:
		if id, ok := x.Fun.(*ast.Ident); ok && slices.Contains(detailBuilders, id.Name) {
			return
		}
	}
	s.refuse(v, "a detail built by hand: use a constructor with a literal format (domain.Errorf, httpErrorf, …)")
}

func (s *fileScan) isProblemType(e ast.Expr) bool {
	full := s.name(e)
	pkg, name, _ := strings.Cut(full, ".")
	return name != "" && problemTypes[name] == pkg
}

// stringLit is the value of a string literal, a concatenation of them or a
// constant of the package.
func stringLit(e ast.Expr, consts map[string]string) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			s, err := strconv.Unquote(x.Value)
			return s, err == nil
		}
	case *ast.BinaryExpr:
		if x.Op == token.ADD {
			a, ok1 := stringLit(x.X, consts)
			b, ok2 := stringLit(x.Y, consts)
			return a + b, ok1 && ok2
		}
	case *ast.ParenExpr:
		return stringLit(x.X, consts)
	case *ast.Ident:
		s, ok := consts[x.Name]
		return s, ok
	}
	return "", false
}
