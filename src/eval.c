/* eval.c: the evaluation figures of eval.h: feature statistics, the Fréchet
 * distance (LAPACKE's dsyevd), the classifier score, and the k-NN precision
 * and recall with distances from the SGEMM. A build without LAPACKE (the
 * Windows one) has none of it: sg_eval_available says so. */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"

#ifdef SIMDGAN_HAVE_LAPACKE
#include <lapacke.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist.h"
#include "sample.h"
#include "util.h"

/* ---- mean and covariance ------------------------------------------------ */

/* The covariance's row sums are split into this many fixed chunks of rows,
 * each summed into its own partial [H, H], then the partials are added in
 * chunk order: the same bits at any thread count. */
#define STAT_CHUNKS 16

typedef struct stats_ctx {
    sg_engine *e;
    const float *feat; /* [n, H] */
    size_t n;
    int H;
    const double *mu;  /* [H] */
    double *part;      /* [STAT_CHUNKS, H, H] upper triangles */
    double *S;         /* [H, H] */
} stats_ctx;

/* part += d^T d over rows [r0, r1) of the centred features, upper triangle.
 * Four rows at a time so each load and store of a row of part serves four
 * products (part is H x H doubles: 512 KiB at H 256, L2-resident). */
static void cov_chunk(const stats_ctx *c, size_t r0, size_t r1, double *part, double *d)
{
    const size_t H = (size_t)c->H;
    for (size_t r = r0; r < r1; r += 4) {
        size_t rows = r1 - r < 4 ? r1 - r : 4;
        for (size_t q = 0; q < 4; q++)   /* d [4, H]; rows past r1 are zero */
            for (size_t j = 0; j < H; j++)
                d[q * H + j] = q < rows ? (double)c->feat[(r + q) * H + j] - c->mu[j] : 0.0;
        const double *d0 = d, *d1 = d + H, *d2 = d + 2 * H, *d3 = d + 3 * H;
        for (size_t i = 0; i < H; i++) {
            double a0 = d0[i], a1 = d1[i], a2 = d2[i], a3 = d3[i];
            double *p = part + i * H;
            for (size_t j = i; j < H; j++)
                p[j] += a0 * d0[j] + a1 * d1[j] + a2 * d2[j] + a3 * d3[j];
        }
    }
}

static void stats_thread(void *ctx, int ith)
{
    const stats_ctx *c = ctx;
    const size_t H = (size_t)c->H;
    double *d = sg_xmalloc(4 * H * sizeof(double));
    for (int ch = ith; ch < STAT_CHUNKS; ch += c->e->nth) {
        double *part = c->part + (size_t)ch * H * H;
        memset(part, 0, H * H * sizeof(double));
        cov_chunk(c, c->n * (size_t)ch / STAT_CHUNKS, c->n * (size_t)(ch + 1) / STAT_CHUNKS, part,
                  d);
    }
    free(d);
    sg_barrier(c->e);
    size_t i0, i1;
    sg_slice(H, ith, c->e->nth, &i0, &i1);
    double scale = 1.0 / (double)(c->n - 1);
    for (size_t i = i0; i < i1; i++)
        for (size_t j = i; j < H; j++) {
            double s = 0.0;
            for (int ch = 0; ch < STAT_CHUNKS; ch++) s += c->part[(size_t)ch * H * H + i * H + j];
            c->S[i * H + j] = s * scale;
        }
    sg_barrier(c->e);
    for (size_t i = i0; i < i1; i++)
        for (size_t j = 0; j < i; j++) c->S[i * H + j] = c->S[j * H + i];
}

void sg_feature_stats(sg_engine *e, const float *feat, size_t n, int H, double *mu, double *S)
{
    const size_t h = (size_t)H;
    for (size_t j = 0; j < h; j++) mu[j] = 0.0;
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < h; j++) mu[j] += (double)feat[r * h + j];
    for (size_t j = 0; j < h; j++) mu[j] /= (double)n;
    stats_ctx c = {e, feat, n, H, mu, sg_xmalloc(STAT_CHUNKS * h * h * sizeof(double)), S};
    sg_parallel(e, stats_thread, &c);
    free(c.part);
}

/* ---- Fréchet distance ---------------------------------------------------- */

int sg_eval_available(void)
{
#ifdef SIMDGAN_HAVE_LAPACKE
    return 0;
#else
    return sg_error("eval: this build has no evaluation (FCD, score, precision, recall): it was "
                    "built without LAPACKE, which Debian does not ship for MinGW; expected a build "
                    "with LAPACKE, such as the Linux one");
#endif
}

#ifdef SIMDGAN_HAVE_LAPACKE
/* C [H, H] = A . B, all row-major doubles. */
static void matmul(double *C, const double *A, const double *B, size_t H)
{
    for (size_t i = 0; i < H; i++) {
        double *c = C + i * H;
        for (size_t j = 0; j < H; j++) c[j] = 0.0;
        for (size_t p = 0; p < H; p++) {
            double a = A[i * H + p];
            const double *b = B + p * H;
            for (size_t j = 0; j < H; j++) c[j] += a * b[j];
        }
    }
}

int sg_frechet(const double *mu1, const double *S1, const double *mu2, const double *S2, int H,
               double *out)
{
    const size_t h = (size_t)H;
    double *V = sg_xmalloc(h * h * sizeof(double)), *T = sg_xmalloc(h * h * sizeof(double));
    double *R = sg_xmalloc(h * h * sizeof(double)), *w = sg_xmalloc(h * sizeof(double));
    int rc = 0;
    /* S1^1/2 = V diag(sqrt(max(w, 0))) V^T from S1 = V diag(w) V^T. */
    memcpy(V, S1, h * h * sizeof(double));
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', H, V, H, w);
    if (info != 0) {
        rc = sg_error("Frechet distance: dsyevd of the first covariance failed (info %d)",
                      (int)info);
        goto done;
    }
    for (size_t i = 0; i < h; i++)   /* T = V diag(sqrt w) */
        for (size_t j = 0; j < h; j++) T[i * h + j] = V[i * h + j] * sqrt(w[j] > 0.0 ? w[j] : 0.0);
    for (size_t i = 0; i < h; i++)   /* R = T V^T = S1^1/2 */
        for (size_t j = 0; j < h; j++) {
            double s = 0.0;
            for (size_t p = 0; p < h; p++) s += T[i * h + p] * V[j * h + p];
            R[i * h + j] = s;
        }
    matmul(T, R, S2, h);   /* T = S1^1/2 S2            */
    matmul(V, T, R, h);    /* V = S1^1/2 S2 S1^1/2     */
    for (size_t i = 0; i < h; i++)   /* symmetric in exact arithmetic: make it so in rounding */
        for (size_t j = i + 1; j < h; j++) {
            double s = 0.5 * (V[i * h + j] + V[j * h + i]);
            V[i * h + j] = V[j * h + i] = s;
        }
    info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', H, V, H, w);
    if (info != 0) {
        rc = sg_error("Frechet distance: dsyevd of S1^1/2 S2 S1^1/2 failed (info %d)", (int)info);
        goto done;
    }
    double diff = 0.0, tr = 0.0, trsqrt = 0.0;
    for (size_t i = 0; i < h; i++) {
        double d = mu1[i] - mu2[i];
        diff += d * d;
        tr += S1[i * h + i] + S2[i * h + i];
        trsqrt += sqrt(w[i] > 0.0 ? w[i] : 0.0);
    }
    *out = diff + tr - 2.0 * trsqrt;
done:
    free(V), free(T), free(R), free(w);
    return rc;
}
#else
int sg_frechet(const double *mu1, const double *S1, const double *mu2, const double *S2, int H,
               double *out)
{
    (void)mu1, (void)S1, (void)mu2, (void)S2, (void)H, (void)out;
    return sg_eval_available();
}
#endif

/* ---- classifier score and histogram -------------------------------------- */

void sg_class_stats(const float *prob, size_t n, double *score, size_t hist[SG_CLASSES],
                    int *covered, double *kl_uniform)
{
    double py[SG_CLASSES] = {0};
    for (int c = 0; c < SG_CLASSES; c++) hist[c] = 0;
    for (size_t i = 0; i < n; i++) {
        const float *p = prob + i * SG_CLASSES;
        int best = 0;
        for (int c = 0; c < SG_CLASSES; c++) {
            py[c] += (double)p[c];
            if (p[c] > p[best]) best = c;
        }
        hist[best]++;
    }
    for (int c = 0; c < SG_CLASSES; c++) py[c] /= (double)n;
    /* E_x KL(p(y|x) || p(y)), a term 0 where p(y|x) is 0. */
    double kl = 0.0;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < SG_CLASSES; c++) {
            double p = (double)prob[i * SG_CLASSES + c];
            if (p > 0.0) kl += p * (log(p) - log(py[c]));
        }
    *score = exp(kl / (double)n);
    *covered = 0;
    *kl_uniform = 0.0;
    for (int c = 0; c < SG_CLASSES; c++) {
        if (!hist[c]) continue;
        double q = (double)hist[c] / (double)n;
        ++*covered;
        *kl_uniform += q * log(q * SG_CLASSES);
    }
}

/* ---- k-NN balls from SGEMM distances -------------------------------------- */

/* Squared distances |a_i - b_j|^2 = |a_i|^2 + |b_j|^2 - 2 a_i . b_j for
 * blocks of BLOCK_R rows of a against BLOCK_C rows of b: the product from
 * the SGEMM into a [BLOCK_R, BLOCK_C] tile (8 MiB), then each thread scans
 * its rows of the tile, contiguously. */
#define BLOCK_R 512
#define BLOCK_C 4096

typedef struct dist_ctx {
    sg_engine *e;
    const float *a, *b; /* [na, H], [nb, H] */
    size_t na, nb;
    int H;
    float *na2, *nb2;   /* [na], [nb] squared norms */
    float *tile;        /* [BLOCK_R, BLOCK_C] */
    /* k-NN (a and b the same rows, i == j skipped): best [na, k], each
     * row's k smallest squared distances, ascending. */
    int k;
    float *best;
    /* Balls both ways: a_i is inside when some |a_i - b_j|^2 <= rb[j]
     * (in_a [na]); b_j when some |a_i - b_j|^2 <= ra[i]. Each thread marks
     * the b_j its rows reach in its own in_b row [nth, nb], so no byte is
     * written by two threads; the rows are OR'ed at the end. */
    const float *ra, *rb;
    unsigned char *in_a, *in_b;
} dist_ctx;

static void sqnorms(const float *x, size_t n, int H, float *out)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int j = 0; j < H; j++) s += (double)x[i * (size_t)H + j] * x[i * (size_t)H + j];
        out[i] = (float)s;
    }
}

static void knn_row(const dist_ctx *c, size_t i, size_t j0, size_t nc, const float *t)
{
    float *best = c->best + i * (size_t)c->k;
    for (size_t q = 0; q < nc; q++) {
        size_t j = j0 + q;
        if (j == i) continue;
        float d = c->na2[i] + c->nb2[j] - 2.0f * t[q];
        if (!(d < best[c->k - 1])) continue;
        int p = c->k - 1;   /* insertion into the sorted k */
        while (p > 0 && best[p - 1] > d) best[p] = best[p - 1], p--;
        best[p] = d;
    }
}

static void balls_row(const dist_ctx *c, size_t i, size_t j0, size_t nc, const float *t,
                      unsigned char *in_b)
{
    unsigned char in = 0;
    for (size_t q = 0; q < nc; q++) {
        size_t j = j0 + q;
        float d = c->na2[i] + c->nb2[j] - 2.0f * t[q];
        in |= d <= c->rb[j];
        in_b[j] |= d <= c->ra[i];
    }
    c->in_a[i] |= in;
}

static void dist_thread(void *ctx, int ith)
{
    dist_ctx *c = ctx;
    const size_t H = (size_t)c->H;
    unsigned char *in_b = c->in_b ? c->in_b + (size_t)ith * c->nb : NULL;
    for (size_t i0 = 0; i0 < c->na; i0 += BLOCK_R) {
        size_t m = c->na - i0 < BLOCK_R ? c->na - i0 : BLOCK_R;
        for (size_t j0 = 0; j0 < c->nb; j0 += BLOCK_C) {
            size_t nc = c->nb - j0 < BLOCK_C ? c->nb - j0 : BLOCK_C;
            sg_view A = {c->a + i0 * H, H, 1}, B = {c->b + j0 * H, 1, H};  /* a . b^T */
            sg_gemm(c->e, m, nc, H, A, B, c->tile, BLOCK_C, 0, NULL, ith);
            size_t r0, r1;
            sg_slice(m, ith, c->e->nth, &r0, &r1);
            for (size_t r = r0; r < r1; r++) {
                if (c->best)
                    knn_row(c, i0 + r, j0, nc, c->tile + r * BLOCK_C);
                else
                    balls_row(c, i0 + r, j0, nc, c->tile + r * BLOCK_C, in_b);
            }
            sg_barrier(c->e);   /* the tile is rewritten by the next product */
        }
    }
}

static void dist_run(dist_ctx *c)
{
    c->na2 = sg_xmalloc((c->na ? c->na : 1) * sizeof(float));
    c->nb2 = sg_xmalloc((c->nb ? c->nb : 1) * sizeof(float));
    sqnorms(c->a, c->na, c->H, c->na2);
    sqnorms(c->b, c->nb, c->H, c->nb2);
    c->tile = sg_xalloc((size_t)BLOCK_R * BLOCK_C * sizeof(float));
    sg_engine_reserve(c->e, BLOCK_R, BLOCK_C, (size_t)c->H);
    sg_parallel(c->e, dist_thread, c);
    free(c->na2), free(c->nb2), sg_free(c->tile);
}

void sg_knn_radii(sg_engine *e, const float *feat, size_t n, int H, int k, float *radii)
{
    dist_ctx c = {.e = e, .a = feat, .b = feat, .na = n, .nb = n, .H = H, .k = k};
    c.best = sg_xmalloc(n * (size_t)k * sizeof(float));
    for (size_t i = 0; i < n * (size_t)k; i++) c.best[i] = INFINITY;
    dist_run(&c);
    for (size_t i = 0; i < n; i++) radii[i] = c.best[i * (size_t)k + (size_t)k - 1];
    free(c.best);
}

void sg_ball_coverage(sg_engine *e, const float *a, size_t na, const float *ra, const float *b,
                      size_t nb, const float *rb, int H, double *a_in_b, double *b_in_a)
{
    const size_t nth = (size_t)e->nth;
    dist_ctx c = {.e = e, .a = a, .b = b, .na = na, .nb = nb, .H = H, .ra = ra, .rb = rb};
    c.in_a = sg_xmalloc(na + 1);
    c.in_b = sg_xmalloc(nth * nb + 1);
    memset(c.in_a, 0, na + 1);
    memset(c.in_b, 0, nth * nb + 1);
    dist_run(&c);
    size_t ia = 0, ib = 0;
    for (size_t i = 0; i < na; i++) ia += c.in_a[i];
    for (size_t j = 0; j < nb; j++) {
        unsigned char in = 0;
        for (size_t t = 0; t < nth; t++) in |= c.in_b[t * nb + j];
        ib += in;
    }
    free(c.in_a), free(c.in_b);
    *a_in_b = na ? (double)ia / (double)na : NAN;
    *b_in_a = nb ? (double)ib / (double)nb : NAN;
}

/* ---- the evaluator ------------------------------------------------------- */

struct sg_evaluator {
    sg_classifier *c;
    sg_engine *e;
    int H;
    size_t n_train, n_test;
    float *feat_test;   /* [n_test, H] */
    float *radii_test;  /* [n_test] squared k-NN radii */
    double *mu_test, *S_test; /* [H], [H, H] */
    double fcd_floor, score_test;
    char extractor[128];
};

/* Rows per classifier call: bounds the float images and the classifier's
 * activations in memory whatever n is. */
#define FEAT_CHUNK 10000

/* feat [n, H] and prob [n, 10] (either may be NULL) of x [n, 784]. */
static void run_classifier(sg_evaluator *ev, const float *x, size_t n, float *feat, float *prob)
{
    for (size_t r = 0; r < n; r += FEAT_CHUNK) {
        size_t m = n - r < FEAT_CHUNK ? n - r : FEAT_CHUNK;
        sg_classifier_run(ev->c, ev->e, x + r * 784, m, feat ? feat + r * (size_t)ev->H : NULL,
                          prob ? prob + r * SG_CLASSES : NULL);
    }
}

/* The same for a data set's bytes, pixel p as ((p / 255) - 0.5) / 0.5. */
static void dataset_features(sg_evaluator *ev, const sg_dataset *ds, float *feat, float *prob)
{
    float lut[256];
    for (int p = 0; p < 256; p++) lut[p] = ((float)p / 255.0f - 0.5f) / 0.5f;
    size_t img = (size_t)ds->rows * (size_t)ds->cols;
    float *x = sg_xmalloc(FEAT_CHUNK * img * sizeof(float));
    for (size_t r = 0; r < ds->n; r += FEAT_CHUNK) {
        size_t m = ds->n - r < FEAT_CHUNK ? ds->n - r : FEAT_CHUNK;
        for (size_t i = 0; i < m * img; i++) x[i] = lut[ds->images[r * img + i]];
        sg_classifier_run(ev->c, ev->e, x, m, feat + r * (size_t)ev->H,
                          prob ? prob + r * SG_CLASSES : NULL);
    }
    free(x);
}

static int load_set(sg_dataset *ds, const char *dir, int train, const char *dataset)
{
    if (sg_mnist_load(ds, dir, train) != 0) return -1;
    int rc = sg_dataset_check(ds, dataset, dir);
    if (rc == 0 && ds->n < 2)
        rc = sg_error("%s: %zu %s images; expected at least 2", dir, ds->n,
                      train ? "training" : "test");
    if (rc != 0) sg_dataset_free(ds);
    return rc;
}

sg_evaluator *sg_eval_open_with(const char *classifier_path, const char *dataset,
                                const char *data_dir, sg_engine *e)
{
    if (sg_eval_available() != 0) return NULL;
    if (strcmp(dataset, "mnist") && strcmp(dataset, "fashion-mnist")) {
        sg_error("dataset %s: expected mnist or fashion-mnist", dataset);
        return NULL;
    }
    char dir[4096];
    if (sg_data_find(dir, sizeof dir, data_dir, dataset) != 0) return NULL;
    sg_classifier *c = classifier_path ? sg_classifier_load(classifier_path)
                                       : sg_classifier_shipped(dataset);
    if (!c) return NULL;
    sg_dataset train = {0}, test = {0};
    if (load_set(&test, dir, 0, dataset) != 0 || load_set(&train, dir, 1, dataset) != 0) {
        sg_dataset_free(&test);
        sg_classifier_free(c);
        return NULL;
    }
    sg_evaluator *ev = sg_xmalloc(sizeof *ev);
    memset(ev, 0, sizeof *ev);
    ev->c = c, ev->e = e, ev->H = sg_classifier_features_dim(c);
    snprintf(ev->extractor, sizeof ev->extractor, "%s", sg_classifier_id(c));
    const size_t H = (size_t)ev->H;
    ev->n_train = train.n, ev->n_test = test.n;

    /* The test set: features, statistics, k-NN radii, score. */
    ev->feat_test = sg_xmalloc(test.n * H * sizeof(float));
    float *prob = sg_xmalloc(test.n * SG_CLASSES * sizeof(float));
    dataset_features(ev, &test, ev->feat_test, prob);
    ev->mu_test = sg_xmalloc(H * sizeof(double));
    ev->S_test = sg_xmalloc(H * H * sizeof(double));
    sg_feature_stats(e, ev->feat_test, test.n, ev->H, ev->mu_test, ev->S_test);
    size_t hist[SG_CLASSES];
    int covered;
    double kl;
    sg_class_stats(prob, test.n, &ev->score_test, hist, &covered, &kl);
    free(prob);
    ev->radii_test = sg_xmalloc(test.n * sizeof(float));
    if (test.n > SG_EVAL_K)
        sg_knn_radii(e, ev->feat_test, test.n, ev->H, SG_EVAL_K, ev->radii_test);

    /* The floor: train against test. */
    float *feat = sg_xmalloc(train.n * H * sizeof(float));
    dataset_features(ev, &train, feat, NULL);
    double *mu = sg_xmalloc(H * sizeof(double)), *S = sg_xmalloc(H * H * sizeof(double));
    sg_feature_stats(e, feat, train.n, ev->H, mu, S);
    free(feat);
    int rc = sg_frechet(mu, S, ev->mu_test, ev->S_test, ev->H, &ev->fcd_floor);
    free(mu), free(S);
    sg_dataset_free(&train);
    sg_dataset_free(&test);
    if (rc != 0) {
        sg_eval_close(ev);
        return NULL;
    }
    return ev;
}

sg_evaluator *sg_eval_open(const char *dataset, const char *data_dir, sg_engine *e)
{
    return sg_eval_open_with(NULL, dataset, data_dir, e);
}

void sg_eval_real(const sg_evaluator *ev, sg_eval_result *r)
{
    memset(r, 0, sizeof *r);
    r->fcd = r->score = r->kl_uniform = r->precision = r->recall = NAN;
    r->fcd_floor = ev->fcd_floor;
    r->score_test = ev->score_test;
    r->n_train = ev->n_train, r->n_test = ev->n_test;
    snprintf(r->extractor, sizeof r->extractor, "%s", ev->extractor);
}

int sg_eval_images(sg_evaluator *ev, const float *x, size_t n, sg_eval_result *r)
{
    sg_eval_real(ev, r);
    if (n < 2) return sg_error("evaluation of %zu images; expected at least 2", n);
    const size_t H = (size_t)ev->H;
    r->n = n;
    float *feat = sg_xmalloc(n * H * sizeof(float));
    float *prob = sg_xmalloc(n * SG_CLASSES * sizeof(float));
    run_classifier(ev, x, n, feat, prob);
    sg_class_stats(prob, n, &r->score, r->hist, &r->covered, &r->kl_uniform);
    free(prob);
    double *mu = sg_xmalloc(H * sizeof(double)), *S = sg_xmalloc(H * H * sizeof(double));
    sg_feature_stats(ev->e, feat, n, ev->H, mu, S);
    int rc = sg_frechet(mu, S, ev->mu_test, ev->S_test, ev->H, &r->fcd);
    free(mu), free(S);
    if (rc == 0 && n > SG_EVAL_K && ev->n_test > SG_EVAL_K) {
        float *radii = sg_xmalloc(n * sizeof(float));
        sg_knn_radii(ev->e, feat, n, ev->H, SG_EVAL_K, radii);
        sg_ball_coverage(ev->e, feat, n, radii, ev->feat_test, ev->n_test, ev->radii_test, ev->H,
                         &r->precision, &r->recall);
        free(radii);
    }
    free(feat);
    return rc;
}

void sg_eval_close(sg_evaluator *ev)
{
    if (!ev) return;
    sg_classifier_free(ev->c);
    free(ev->feat_test), free(ev->radii_test), free(ev->mu_test), free(ev->S_test);
    free(ev);
}
