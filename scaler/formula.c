/* formula.c: KEDA's spec.advanced.scalingModifiers.formula, compiled once at load
 * and evaluated on every poll.
 *
 * KEDA runs the formula with expr-lang (github.com/expr-lang/expr), with each named
 * trigger's metric value bound to the trigger's name, and wraps it in float(...)
 * (castToFloatIfNecessary), so a formula must produce a number. This is the
 * numeric subset of that language a scaling formula uses, with expr's precedence
 * (lowest first):
 *
 *   c ? a : b            ternary, right associative
 *   ||  or               logical or
 *   &&  and              logical and
 *   == != < <= > >=      comparisons
 *   !  not               logical not (prefix)
 *   + -                  addition, subtraction
 *   * /                  multiplication, float division (x/0 is +-Inf, as in Go)
 *   - +                  unary minus and plus
 *   ** ^                 power, right associative
 *   abs ceil floor round float int min max, numbers, trigger names, ( )
 *
 * Types are checked at compile time, as expr.Compile does: arithmetic takes
 * numbers, logic takes booleans, and the result must be a number. Anything else
 * (%, ??, strings, arrays, closures) is refused with a message naming what was
 * found, so a manifest is never half understood. The text and the tree are
 * bounded; evaluation is a recursion no deeper than the compile-time nesting limit.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"
#include "scaler_int.h"

#define FORMULA_MAX_LEN   2048 /* bytes of formula text */
#define FORMULA_MAX_NODES 512
#define FORMULA_MAX_DEPTH 48 /* nesting of the parse (and so of the evaluation) */
#define FORMULA_MAX_ARGS  16 /* arguments of min/max */

enum node_kind {
    N_NUM,
    N_VAR,
    N_NEG,
    N_NOT,
    N_ADD,
    N_SUB,
    N_MUL,
    N_DIV,
    N_POW,
    N_EQ,
    N_NE,
    N_LT,
    N_LE,
    N_GT,
    N_GE,
    N_AND,
    N_OR,
    N_TERN,
    N_CALL,
};

enum fn { F_ABS, F_CEIL, F_FLOOR, F_ROUND, F_FLOAT, F_INT, F_MIN, F_MAX };

struct node {
    enum node_kind kind;
    bool is_bool; /* the static type: boolean, else number */
    double num;   /* N_NUM */
    size_t var;   /* N_VAR: trigger index */
    enum fn fn;   /* N_CALL */
    int a, b, c;  /* children (indices), -1 when absent */
    int args[FORMULA_MAX_ARGS];
    size_t n_args;
};

struct scaler_formula {
    const struct node *nodes;
    size_t n_nodes;
    int root;
};

struct parser {
    const char *s, *p;
    const char *const *names;
    size_t n_names;
    struct node nodes[FORMULA_MAX_NODES];
    size_t n;
    int depth;
    char *err;
    size_t errcap;
    bool failed;
};

static int __attribute__((format(printf, 2, 3))) fail(struct parser *P, const char *fmt, ...)
{
    if (!P->failed) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(P->err, P->errcap, "%s (at column %d)", msg, (int)(P->p - P->s) + 1);
    }
    P->failed = true;
    return -1;
}

static void skip_space(struct parser *P)
{
    while (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r')
        P->p++;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

static bool is_ident(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Consume `op` if it comes next (after spaces); words must end at a word boundary. */
static bool take(struct parser *P, const char *op)
{
    skip_space(P);
    size_t n = strlen(op);
    if (strncmp(P->p, op, n) != 0)
        return false;
    if (is_ident_start(op[0]) && is_ident(P->p[n]))
        return false;
    /* "*" is not the start of "**", "=" never stands alone, "<" is not "<=" */
    if ((strcmp(op, "*") == 0 && P->p[1] == '*') ||
        ((strcmp(op, "<") == 0 || strcmp(op, ">") == 0) && P->p[1] == '=') ||
        (strcmp(op, "!") == 0 && P->p[1] == '='))
        return false;
    P->p += n;
    return true;
}

static int add(struct parser *P, enum node_kind kind, bool is_bool, int a, int b, int c)
{
    if (P->n >= FORMULA_MAX_NODES)
        return fail(P, "formula too long (more than %d terms)", FORMULA_MAX_NODES);
    struct node *nd = &P->nodes[P->n];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nd->is_bool = is_bool;
    nd->a = a;
    nd->b = b;
    nd->c = c;
    return (int)P->n++;
}

static bool is_bool(const struct parser *P, int i)
{
    return P->nodes[i].is_bool;
}

static int want_num(struct parser *P, int i, const char *op)
{
    if (i >= 0 && is_bool(P, i))
        return fail(P, "invalid operation: %s on a bool", op);
    return i;
}

static int want_bool(struct parser *P, int i, const char *op)
{
    if (i >= 0 && !is_bool(P, i))
        return fail(P, "invalid operation: %s on a number (use a comparison)", op);
    return i;
}

static int parse_ternary(struct parser *P);
static int parse_unary(struct parser *P);

static int parse_call(struct parser *P, const char *name, size_t len)
{
    static const struct {
        const char *name;
        enum fn fn;
        int min_args, max_args;
    } fns[] = {
        {"abs", F_ABS, 1, 1},
        {"ceil", F_CEIL, 1, 1},
        {"floor", F_FLOOR, 1, 1},
        {"round", F_ROUND, 1, 1},
        {"float", F_FLOAT, 1, 1},
        {"int", F_INT, 1, 1},
        {"min", F_MIN, 1, FORMULA_MAX_ARGS},
        {"max", F_MAX, 1, FORMULA_MAX_ARGS},
    };
    size_t f = 0;
    for (; f < sizeof fns / sizeof fns[0]; f++)
        if (strlen(fns[f].name) == len && strncmp(fns[f].name, name, len) == 0)
            break;
    if (f == sizeof fns / sizeof fns[0])
        return fail(P,
                    "function %.*s is not supported by scrapeship (abs, ceil, floor, round, float, int, "
                    "min, max)",
                    (int)len, name);
    int args[FORMULA_MAX_ARGS];
    size_t n = 0;
    skip_space(P);
    if (!take(P, ")")) {
        for (;;) {
            if (n == FORMULA_MAX_ARGS)
                return fail(P, "%s: more than %d arguments", fns[f].name, FORMULA_MAX_ARGS);
            int a = want_num(P, parse_ternary(P), fns[f].name);
            if (a < 0)
                return -1;
            args[n++] = a;
            if (take(P, ")"))
                break;
            if (!take(P, ","))
                return fail(P, "expected , or ) in the arguments of %s", fns[f].name);
        }
    }
    if ((int)n < fns[f].min_args || (int)n > fns[f].max_args)
        return fail(P, "%s takes %d argument%s, not %zu", fns[f].name, fns[f].min_args,
                    fns[f].max_args > 1 ? " or more" : "", n);
    int i = add(P, N_CALL, false, -1, -1, -1);
    if (i < 0)
        return -1;
    P->nodes[i].fn = fns[f].fn;
    memcpy(P->nodes[i].args, args, n * sizeof args[0]);
    P->nodes[i].n_args = n;
    return i;
}

static int parse_primary(struct parser *P)
{
    skip_space(P);
    const char *start = P->p;
    if (take(P, "(")) {
        int e = parse_ternary(P);
        if (e < 0)
            return -1;
        if (!take(P, ")"))
            return fail(P, "expected )");
        return e;
    }
    if ((*P->p >= '0' && *P->p <= '9') || (*P->p == '.' && P->p[1] >= '0' && P->p[1] <= '9')) {
        char buf[64];
        size_t n = 0;
        while (n + 1 < sizeof buf &&
               ((*P->p >= '0' && *P->p <= '9') || *P->p == '.' || *P->p == '_' || *P->p == 'e' ||
                *P->p == 'E' || ((*P->p == '+' || *P->p == '-') && n && (buf[n - 1] | 32) == 'e'))) {
            if (*P->p != '_') /* expr allows 1_000 */
                buf[n++] = *P->p;
            P->p++;
        }
        buf[n] = '\0';
        char *end;
        double v = strtod(buf, &end);
        if (*end || is_ident(*P->p))
            return fail(P, "bad number \"%.*s\"", (int)(P->p - start), start);
        int i = add(P, N_NUM, false, -1, -1, -1);
        if (i >= 0)
            P->nodes[i].num = v;
        return i;
    }
    if (is_ident_start(*P->p)) {
        while (is_ident(*P->p))
            P->p++;
        size_t len = (size_t)(P->p - start);
        if ((len == 4 && strncmp(start, "true", 4) == 0) || (len == 5 && strncmp(start, "false", 5) == 0)) {
            int i = add(P, N_NUM, true, -1, -1, -1);
            if (i >= 0)
                P->nodes[i].num = len == 4;
            return i;
        }
        skip_space(P);
        if (*P->p == '(') {
            P->p++;
            return parse_call(P, start, len);
        }
        for (size_t k = 0; k < P->n_names; k++)
            if (P->names[k] && strlen(P->names[k]) == len && strncmp(P->names[k], start, len) == 0) {
                int i = add(P, N_VAR, false, -1, -1, -1);
                if (i >= 0)
                    P->nodes[i].var = k;
                return i;
            }
        P->p = start;
        return fail(P, "unknown name %.*s (a formula may only use the names of this ScaledObject's triggers)",
                    (int)len, start);
    }
    if (!*P->p)
        return fail(P, "unexpected end of formula");
    return fail(P, "unexpected \"%c\"", *P->p);
}

static int parse_power(struct parser *P)
{
    int l = parse_primary(P);
    if (l < 0)
        return -1;
    if (take(P, "**") || take(P, "^")) {
        int r = parse_unary(P); /* right associative; 2 ** -1 is allowed */
        if (want_num(P, l, "**") < 0 || want_num(P, r, "**") < 0)
            return -1;
        return add(P, N_POW, false, l, r, -1);
    }
    return l;
}

static int parse_unary(struct parser *P)
{
    if (++P->depth > FORMULA_MAX_DEPTH)
        return fail(P, "formula nested too deeply");
    int r;
    if (take(P, "-")) {
        int e = want_num(P, parse_unary(P), "-");
        r = e < 0 ? -1 : add(P, N_NEG, false, e, -1, -1);
    } else if (take(P, "+")) {
        r = want_num(P, parse_unary(P), "+");
    } else {
        r = parse_power(P);
    }
    P->depth--;
    return r;
}

static int parse_mul(struct parser *P)
{
    int l = parse_unary(P);
    while (l >= 0) {
        skip_space(P);
        if (*P->p == '%')
            return fail(P, "%% (integer modulo) is not supported by scrapeship");
        enum node_kind k;
        if (take(P, "*"))
            k = N_MUL;
        else if (take(P, "/"))
            k = N_DIV;
        else
            break;
        int r = parse_unary(P);
        if (want_num(P, l, k == N_MUL ? "*" : "/") < 0 || want_num(P, r, k == N_MUL ? "*" : "/") < 0)
            return -1;
        l = add(P, k, false, l, r, -1);
    }
    return l;
}

static int parse_add(struct parser *P)
{
    int l = parse_mul(P);
    while (l >= 0) {
        enum node_kind k;
        if (take(P, "+"))
            k = N_ADD;
        else if (take(P, "-"))
            k = N_SUB;
        else
            break;
        int r = parse_mul(P);
        if (want_num(P, l, k == N_ADD ? "+" : "-") < 0 || want_num(P, r, k == N_ADD ? "+" : "-") < 0)
            return -1;
        l = add(P, k, false, l, r, -1);
    }
    return l;
}

static int parse_not(struct parser *P)
{
    if (take(P, "!") || take(P, "not")) {
        if (++P->depth > FORMULA_MAX_DEPTH)
            return fail(P, "formula nested too deeply");
        int e = want_bool(P, parse_not(P), "!");
        P->depth--;
        return e < 0 ? -1 : add(P, N_NOT, true, e, -1, -1);
    }
    return parse_add(P);
}

static int parse_compare(struct parser *P)
{
    static const struct {
        const char *op;
        enum node_kind kind;
    } ops[] = {{"==", N_EQ}, {"!=", N_NE}, {"<=", N_LE}, {">=", N_GE}, {"<", N_LT}, {">", N_GT}};
    int l = parse_not(P);
    while (l >= 0) {
        size_t k = 0;
        for (; k < sizeof ops / sizeof ops[0]; k++)
            if (take(P, ops[k].op))
                break;
        if (k == sizeof ops / sizeof ops[0])
            break;
        int r = parse_not(P);
        if (r < 0)
            return -1;
        if (ops[k].kind == N_EQ || ops[k].kind == N_NE) {
            if (is_bool(P, l) != is_bool(P, r))
                return fail(P, "invalid operation: %s between a bool and a number", ops[k].op);
        } else if (want_num(P, l, ops[k].op) < 0 || want_num(P, r, ops[k].op) < 0) {
            return -1;
        }
        l = add(P, ops[k].kind, true, l, r, -1);
    }
    return l;
}

static int parse_and(struct parser *P)
{
    int l = parse_compare(P);
    while (l >= 0 && (take(P, "&&") || take(P, "and"))) {
        int r = parse_compare(P);
        if (want_bool(P, l, "&&") < 0 || want_bool(P, r, "&&") < 0)
            return -1;
        l = add(P, N_AND, true, l, r, -1);
    }
    return l;
}

static int parse_or(struct parser *P)
{
    int l = parse_and(P);
    while (l >= 0 && (take(P, "||") || take(P, "or"))) {
        int r = parse_and(P);
        if (want_bool(P, l, "||") < 0 || want_bool(P, r, "||") < 0)
            return -1;
        l = add(P, N_OR, true, l, r, -1);
    }
    return l;
}

static int parse_ternary(struct parser *P)
{
    if (++P->depth > FORMULA_MAX_DEPTH)
        return fail(P, "formula nested too deeply");
    int c = parse_or(P);
    skip_space(P);
    if (c >= 0 && P->p[0] == '?' && P->p[1] == '?') {
        P->depth--;
        return fail(P, "?? (nil coalescing) is not supported by scrapeship");
    }
    if (c >= 0 && take(P, "?")) {
        int a = parse_ternary(P);
        if (a >= 0 && !take(P, ":"))
            a = fail(P, "expected : in a ? b : c");
        int b = a >= 0 ? parse_ternary(P) : -1;
        if (want_bool(P, c, "?:") < 0 || a < 0 || b < 0) {
            P->depth--;
            return -1;
        }
        if (is_bool(P, a) != is_bool(P, b)) {
            P->depth--;
            return fail(P, "the two branches of ?: must both be numbers");
        }
        c = add(P, N_TERN, is_bool(P, a), c, a, b);
    }
    P->depth--;
    return c;
}

int scaler__formula_compile(const char *text, const char *const *names, size_t n_names,
                            struct ss_arena *arena, const struct scaler_formula **out, char *err,
                            size_t errcap)
{
    *out = NULL;
    if (!text || !arena)
        return SS_EINVAL;
    if (strlen(text) > FORMULA_MAX_LEN) {
        snprintf(err, errcap, "formula longer than %d bytes", FORMULA_MAX_LEN);
        return SS_ELIMIT;
    }
    static struct parser zero;
    struct parser *P = malloc(sizeof *P); /* ~40 KiB: not on the stack */
    if (!P)
        return SS_ENOMEM;
    *P = zero;
    P->s = P->p = text;
    P->names = names;
    P->n_names = n_names;
    P->err = err;
    P->errcap = errcap;
    int rc = SS_ECONFIG;
    skip_space(P);
    if (!*P->p) {
        snprintf(err, errcap, "formula is empty");
        goto done;
    }
    int root = parse_ternary(P);
    if (root < 0)
        goto done;
    skip_space(P);
    if (*P->p) {
        fail(P, "unexpected \"%.20s\" after the expression", P->p);
        goto done;
    }
    if (is_bool(P, root)) {
        snprintf(err, errcap, "the formula gives a bool; it must give a number (KEDA wraps it in float())");
        goto done;
    }
    struct node *nodes = ss_arena_alloc(arena, P->n * sizeof *nodes);
    struct scaler_formula *f = ss_arena_alloc(arena, sizeof *f);
    if (!nodes || !f) {
        rc = SS_ENOMEM;
        goto done;
    }
    memcpy(nodes, P->nodes, P->n * sizeof *nodes);
    f->nodes = nodes;
    f->n_nodes = P->n;
    f->root = root;
    *out = f;
    rc = 0;
done:
    free(P);
    return rc;
}

static double eval(const struct scaler_formula *f, int i, const double *v)
{
    const struct node *nd = &f->nodes[i];
    switch (nd->kind) {
    case N_NUM: return nd->num;
    case N_VAR: return v[nd->var];
    case N_NEG: return -eval(f, nd->a, v);
    case N_NOT: return eval(f, nd->a, v) == 0;
    case N_ADD: return eval(f, nd->a, v) + eval(f, nd->b, v);
    case N_SUB: return eval(f, nd->a, v) - eval(f, nd->b, v);
    case N_MUL: return eval(f, nd->a, v) * eval(f, nd->b, v);
    case N_DIV: return eval(f, nd->a, v) / eval(f, nd->b, v);
    case N_POW: return pow(eval(f, nd->a, v), eval(f, nd->b, v));
    case N_EQ: return eval(f, nd->a, v) == eval(f, nd->b, v);
    case N_NE: return eval(f, nd->a, v) != eval(f, nd->b, v);
    case N_LT: return eval(f, nd->a, v) < eval(f, nd->b, v);
    case N_LE: return eval(f, nd->a, v) <= eval(f, nd->b, v);
    case N_GT: return eval(f, nd->a, v) > eval(f, nd->b, v);
    case N_GE: return eval(f, nd->a, v) >= eval(f, nd->b, v);
    case N_AND: return eval(f, nd->a, v) != 0 && eval(f, nd->b, v) != 0;
    case N_OR: return eval(f, nd->a, v) != 0 || eval(f, nd->b, v) != 0;
    case N_TERN: return eval(f, nd->a, v) != 0 ? eval(f, nd->b, v) : eval(f, nd->c, v);
    case N_CALL: break;
    }
    double x = eval(f, nd->args[0], v);
    switch (nd->fn) {
    case F_ABS: return fabs(x);
    case F_CEIL: return ceil(x);
    case F_FLOOR: return floor(x);
    case F_ROUND: return round(x); /* Go math.Round: half away from zero */
    case F_FLOAT: return x;
    case F_INT: return trunc(x);
    case F_MIN:
    case F_MAX:
        for (size_t k = 1; k < nd->n_args; k++) {
            double y = eval(f, nd->args[k], v);
            if (nd->fn == F_MIN ? y < x : y > x)
                x = y;
        }
        return x;
    }
    return 0;
}

double scaler__formula_eval(const struct scaler_formula *f, const double *values)
{
    return eval(f, f->root, values);
}
