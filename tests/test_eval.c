/* test_eval.c: the evaluation (eval.h) and the generator (sample.h).
 *
 * Usage: test_eval OUT_DIR [--data]
 *
 * - The Fréchet distance against closed forms: equal Gaussians give 0;
 *   commuting covariances (one rotation, two spectra) give |dmu|^2 +
 *   sum (sqrt a - sqrt b)^2; S2 = c^2 S1 gives (1 - c)^2 Tr S1; disjoint
 *   singular covariances exercise the clamp; the distance is symmetric.
 * - Feature statistics against a two-pass double reference, and the same
 *   bits at 1 and 2 threads.
 * - Classifier score, histogram, classes covered, KL to uniform on rows
 *   with known answers (one-hot balanced: 10; all alike: 1).
 * - k-NN radii and ball coverage against brute force in double, over
 *   several row blocks of the SGEMM distances (column blocks: the fixture
 *   case "blocks").
 * - G files: one with the tutorial's keys in another order and no metadata
 *   loads and runs as a naive double forward pass; a D, a file with a
 *   missing or extra tensor, a wrong shape, a NaN are refused with an
 *   error naming the file. z: a seed's first rows are a smaller draw's,
 *   and differ from training's z.
 * - Fixtures for tests/test_eval.py in OUT_DIR: cases.json and, per case,
 *   <name>_a.f32 and <name>_b.f32 (features [n, H], little-endian
 *   float32) with the FCD, precision and recall computed here, which the
 *   Python test recomputes with numpy and scipy.
 * - With --data and $SIMDGAN_DATA: the shipped MNIST classifier (found via
 *   $SIMDGAN_MODELS) on the real data: the test set against itself has FCD
 *   0 within rounding, precision and recall 1 and the test set's score;
 *   the train-vs-test floor is small and positive; uniform noise images
 *   are far worse; the test set scores above 9.5. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "cpu.h"
#include "eval.h"
#include "mnist.h"
#include "model.h"
#include "rng.h"
#include "safetensors.h"
#include "sample.h"
#include "util.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

/* ---- deterministic random numbers (the test's own, not the library's) ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform(void)   /* in (0, 1) */
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) * 0x1p-53;
}

static double gauss(void)
{
    return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform());
}

/* ---- small dense helpers in double ---------------------------------------- */

/* The larger of a running worst error w and d, keeping a NaN once seen so
 * that it fails the check (fmax would drop it). */
static double worst_of(double w, double d) { return isnan(w) || d <= w ? w : d; }

/* Q [H, H]: an orthogonal matrix, Gram-Schmidt on Gaussian columns. */
static void random_rotation(double *Q, int H)
{
    for (int i = 0; i < H * H; i++) Q[i] = gauss();
    for (int j = 0; j < H; j++) {
        for (int p = 0; p < j; p++) {
            double d = 0.0;
            for (int i = 0; i < H; i++) d += Q[i * H + j] * Q[i * H + p];
            for (int i = 0; i < H; i++) Q[i * H + j] -= d * Q[i * H + p];
        }
        double nrm = 0.0;
        for (int i = 0; i < H; i++) nrm += Q[i * H + j] * Q[i * H + j];
        for (int i = 0; i < H; i++) Q[i * H + j] /= sqrt(nrm);
    }
}

/* S = Q diag(d) Q^T */
static void spectral(double *S, const double *Q, const double *d, int H)
{
    for (int i = 0; i < H; i++)
        for (int j = 0; j < H; j++) {
            double s = 0.0;
            for (int p = 0; p < H; p++) s += Q[i * H + p] * d[p] * Q[j * H + p];
            S[i * H + j] = s;
        }
}

static double trace(const double *S, int H)
{
    double t = 0.0;
    for (int i = 0; i < H; i++) t += S[i * H + i];
    return t;
}

/* ---- Fréchet distance ----------------------------------------------------- */

static void test_frechet(void)
{
    enum { H = 24 };
    static double Q[H * H], S1[H * H], S2[H * H], mu1[H], mu2[H], a[H], b[H];
    random_rotation(Q, H);
    double dmu = 0.0, want = 0.0;
    for (int i = 0; i < H; i++) {
        mu1[i] = gauss(), mu2[i] = gauss();
        dmu += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
        a[i] = 0.1 + 3.0 * uniform(), b[i] = 0.1 + 3.0 * uniform();
        want += (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
    }
    spectral(S1, Q, a, H);
    spectral(S2, Q, b, H);
    double f;
    CHECK(sg_frechet(mu1, S1, mu1, S1, H, &f) == 0, "%s", sg_last_error());
    CHECK(fabs(f) <= 1e-12 * trace(S1, H), "equal Gaussians: FCD %.3g, expected 0", f);
    CHECK(sg_frechet(mu1, S1, mu2, S2, H, &f) == 0, "%s", sg_last_error());
    CHECK(fabs(f - (dmu + want)) <= 1e-10 * (dmu + want),
          "commuting covariances: FCD %.15g, expected %.15g", f, dmu + want);
    /* S2 = c^2 S1 */
    for (int i = 0; i < H * H; i++) S2[i] = 0.36 * S1[i];
    CHECK(sg_frechet(mu1, S1, mu1, S2, H, &f) == 0, "%s", sg_last_error());
    CHECK(fabs(f - 0.16 * trace(S1, H)) <= 1e-10 * trace(S1, H),
          "S2 = 0.6^2 S1: FCD %.15g, expected %.15g", f, 0.16 * trace(S1, H));
    /* Disjoint supports: S1 = diag(1, 0, ...), S2 = diag(0, 1, 0, ...): the
     * product is 0, every eigenvalue clamps to 0, FCD = Tr S1 + Tr S2 = 2. */
    memset(S1, 0, sizeof S1), memset(S2, 0, sizeof S2);
    S1[0] = 1.0, S2[H + 1] = 1.0;
    CHECK(sg_frechet(mu1, S1, mu1, S2, H, &f) == 0, "%s", sg_last_error());
    CHECK(fabs(f - 2.0) <= 1e-12, "disjoint singular covariances: FCD %.17g, expected 2", f);
    /* Two random covariances that do not commute: symmetric. */
    static double A[H * H];
    for (int i = 0; i < H * H; i++) A[i] = gauss();
    for (int i = 0; i < H; i++)
        for (int j = 0; j < H; j++) {
            double s = 0.0;
            for (int p = 0; p < H; p++) s += A[i * H + p] * A[j * H + p];
            S1[i * H + j] = s / H;
        }
    spectral(S2, Q, b, H);
    double f12, f21;
    CHECK(sg_frechet(mu1, S1, mu2, S2, H, &f12) == 0 && sg_frechet(mu2, S2, mu1, S1, H, &f21) == 0,
          "%s", sg_last_error());
    CHECK(fabs(f12 - f21) <= 1e-9 * f12 && f12 > 0.0, "FCD(1, 2) %.15g, FCD(2, 1) %.15g", f12, f21);
}

/* ---- statistics ----------------------------------------------------------- */

static sg_engine engine(int nth)
{
    char why[256];
    const sg_kernels *k = sg_kernels_select(NULL, why, sizeof why);
    sg_engine e;
    if (!k || sg_engine_init(&e, k, nth) != 0) {
        fprintf(stderr, "test_eval: %s\n", sg_last_error());
        exit(1);
    }
    return e;
}

static void test_stats(sg_engine *e1, sg_engine *e2)
{
    enum { N = 1003, H = 37 };
    float *f = sg_xmalloc((size_t)N * H * sizeof(float));
    for (size_t i = 0; i < (size_t)N * H; i++) f[i] = (float)(5.0 + gauss() * (1 + i % 3));
    static double mu[H], S[H * H], mu2[H], S2[H * H], rmu[H], rS[H * H];
    sg_feature_stats(e1, f, N, H, mu, S);
    sg_feature_stats(e2, f, N, H, mu2, S2);
    CHECK(!memcmp(mu, mu2, sizeof mu) && !memcmp(S, S2, sizeof S),
          "statistics differ between 1 and %d threads", e2->nth);
    for (int j = 0; j < H; j++) {
        rmu[j] = 0.0;
        for (int r = 0; r < N; r++) rmu[j] += f[r * H + j];
        rmu[j] /= N;
    }
    for (int i = 0; i < H; i++)
        for (int j = 0; j < H; j++) {
            double s = 0.0;
            for (int r = 0; r < N; r++) s += (f[r * H + i] - rmu[i]) * (f[r * H + j] - rmu[j]);
            rS[i * H + j] = s / (N - 1);
        }
    double worst = 0.0;
    for (int i = 0; i < H; i++)
        for (int j = 0; j < H; j++)
            worst = worst_of(worst, fabs(S[i * H + j] - rS[i * H + j]) /
                                        sqrt(rS[i * H + i] * rS[j * H + j]));
    CHECK(worst <= 1e-12, "covariance differs from the two-pass reference by %.3g (relative)",
          worst);
    double wmu = 0.0;
    for (int j = 0; j < H; j++) wmu = worst_of(wmu, fabs(mu[j] - rmu[j]) / fabs(rmu[j]));
    CHECK(wmu <= 1e-13, "mean differs from the reference by %.3g (relative)", wmu);
    for (int i = 0; i < H; i++)
        for (int j = 0; j < i; j++)
            CHECK(S[i * H + j] == S[j * H + i], "covariance not symmetric at %d,%d", i, j);
    free(f);
}

/* ---- classifier score and classes ---------------------------------------- */

static void test_class_stats(void)
{
    enum { N = 200 };
    static float p[N * SG_CLASSES];
    size_t hist[SG_CLASSES];
    int covered;
    double score, kl;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < SG_CLASSES; c++) p[i * SG_CLASSES + c] = c == i % SG_CLASSES;
    sg_class_stats(p, N, &score, hist, &covered, &kl);
    CHECK(fabs(score - 10.0) <= 1e-12, "one-hot balanced: score %.15g, expected 10", score);
    CHECK(covered == 10 && fabs(kl) <= 1e-15, "one-hot balanced: covered %d, KL %.3g", covered, kl);
    for (int c = 0; c < SG_CLASSES; c++) CHECK(hist[c] == N / 10, "hist[%d] = %zu", c, hist[c]);
    /* All rows alike: p(y|x) = p(y), score 1; argmax class 3 (0.3 beats
     * the 0.3 of class 7 by coming first). */
    for (int i = 0; i < N; i++)
        for (int c = 0; c < SG_CLASSES; c++)
            p[i * SG_CLASSES + c] = c == 3 || c == 7 ? 0.3f : 0.05f;
    sg_class_stats(p, N, &score, hist, &covered, &kl);
    CHECK(fabs(score - 1.0) <= 1e-12, "identical rows: score %.15g, expected 1", score);
    CHECK(covered == 1 && hist[3] == N, "identical rows: covered %d, hist[3] %zu", covered,
          hist[3]);
    CHECK(fabs(kl - log(10.0)) <= 1e-12, "one class: KL to uniform %.15g, expected ln 10", kl);
    /* Two classes, half each, one-hot: score 2, KL ln 5. */
    for (int i = 0; i < N; i++)
        for (int c = 0; c < SG_CLASSES; c++) p[i * SG_CLASSES + c] = c == (i % 2) * 5;
    sg_class_stats(p, N, &score, hist, &covered, &kl);
    CHECK(fabs(score - 2.0) <= 1e-12 && covered == 2 && fabs(kl - log(5.0)) <= 1e-12,
          "two classes: score %.15g (2), covered %d (2), KL %.15g (ln 5)", score, covered, kl);
}

/* ---- k-NN radii and coverage ---------------------------------------------- */

static double dist2(const float *a, const float *b, int H)
{
    double s = 0.0;
    for (int j = 0; j < H; j++) s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    return s;
}

/* Brute-force k-th nearest other row, in double. */
static void knn_ref(const float *f, size_t n, int H, int k, double *out)
{
    double best[16];
    for (size_t i = 0; i < n; i++) {
        for (int q = 0; q < k; q++) best[q] = INFINITY;
        for (size_t j = 0; j < n; j++) {
            if (j == i) continue;
            double d = dist2(f + i * H, f + j * H, H);
            if (d >= best[k - 1]) continue;
            int p = k - 1;
            while (p > 0 && best[p - 1] > d) best[p] = best[p - 1], p--;
            best[p] = d;
        }
        out[i] = best[k - 1];
    }
}

/* Rows of a inside some ball of b, in double; *ambiguous counts rows within
 * float rounding of a ball's edge (rel 1e-4), where either answer is right. */
static size_t coverage_ref(const float *a, size_t na, const float *b, size_t nb, int H,
                           const double *r, size_t *ambiguous)
{
    size_t inside = 0;
    *ambiguous = 0;
    for (size_t i = 0; i < na; i++) {
        int in = 0, near = 0;
        for (size_t j = 0; j < nb; j++) {
            double d = dist2(a + i * H, b + j * H, H);
            if (d <= r[j]) in = 1;
            if (fabs(d - r[j]) <= 1e-4 * r[j]) near = 1;
        }
        *ambiguous += near;
        inside += in;
    }
    return inside;
}

static float *random_features(size_t n, int H, double shift, double scale)
{
    float *f = sg_xmalloc(n * (size_t)H * sizeof(float));
    for (size_t i = 0; i < n * (size_t)H; i++) f[i] = (float)(shift + scale * gauss());
    return f;
}

static void test_knn(sg_engine *e1, sg_engine *e2)
{
    /* 700 and 1300 rows: two and three row blocks of 512 (the fixture case
     * "blocks" crosses column blocks of 4096, checked in test_eval.py). */
    const size_t na = 700, nb = 1300;
    const int H = 6, k = SG_EVAL_K;
    float *a = random_features(na, H, 0.3, 1.0), *b = random_features(nb, H, 0.0, 1.2);
    float *ra = sg_xmalloc(na * sizeof(float)), *rb = sg_xmalloc(nb * sizeof(float));
    float *rb2 = sg_xmalloc(nb * sizeof(float));
    double *ra_ref = sg_xmalloc(na * sizeof(double)), *rb_ref = sg_xmalloc(nb * sizeof(double));
    sg_knn_radii(e1, a, na, H, k, ra);
    sg_knn_radii(e1, b, nb, H, k, rb);
    sg_knn_radii(e2, b, nb, H, k, rb2);
    CHECK(!memcmp(rb, rb2, nb * sizeof(float)), "k-NN radii differ between 1 and %d threads",
          e2->nth);
    knn_ref(a, na, H, k, ra_ref);
    knn_ref(b, nb, H, k, rb_ref);
    double worst = 0.0;
    for (size_t i = 0; i < na; i++) worst = worst_of(worst, fabs(ra[i] - ra_ref[i]) / ra_ref[i]);
    for (size_t i = 0; i < nb; i++) worst = worst_of(worst, fabs(rb[i] - rb_ref[i]) / rb_ref[i]);
    CHECK(worst <= 1e-4, "k-NN radii differ from brute force by %.3g (relative)", worst);

    /* Coverage both ways, against brute force with the reference radii. */
    double prec, rec, prec2, rec2;
    sg_ball_coverage(e1, a, na, ra, b, nb, rb, H, &prec, &rec);
    sg_ball_coverage(e2, a, na, ra, b, nb, rb, H, &prec2, &rec2);
    CHECK(prec == prec2 && rec == rec2, "coverage differs between 1 and %d threads: %g %g, %g %g",
          e2->nth, prec, prec2, rec, rec2);
    size_t amb, inside = coverage_ref(a, na, b, nb, H, rb_ref, &amb);
    CHECK(fabs(prec * (double)na - (double)inside) <= (double)amb,
          "precision %.6f, brute force %zu of %zu inside (%zu ambiguous)", prec, inside, na, amb);
    CHECK(prec > 0.2 && prec < 1.0, "precision %.4f: the case should be neither 0 nor 1", prec);
    inside = coverage_ref(b, nb, a, na, H, ra_ref, &amb);
    CHECK(fabs(rec * (double)nb - (double)inside) <= (double)amb,
          "recall %.6f, brute force %zu of %zu inside (%zu ambiguous)", rec, inside, nb, amb);
    CHECK(rec > 0.05 && rec < 1.0, "recall %.4f: the case should be neither 0 nor 1", rec);
    /* A set against itself: every row is in its own ball. */
    sg_ball_coverage(e1, a, na, ra, a, na, ra, H, &prec, &rec);
    CHECK(prec == 1.0 && rec == 1.0, "a set is not inside its own balls: %g %g", prec, rec);
    free(a), free(b), free(ra), free(rb), free(rb2), free(ra_ref), free(rb_ref);
}

/* ---- G files and z ---------------------------------------------------------- */

static char tmp_dir[] = "/tmp/simdgan_test_eval_XXXXXX";

/* Writes a G-like file: the six tutorial tensors for latent L, hidden Hh,
 * image `out`, values from the test's generator, in the order `order`
 * (indices into sg_net_names), with `extra` an additional tensor when not
 * NULL and value `poison` written into element 5 of tensor 2 when not 0. */
static void write_g(const char *path, int L, int Hh, int out, const int order[6], const char *extra,
                    float poison, float *keep[6])
{
    const int64_t shapes[6][2] = {{Hh, L}, {Hh, 0}, {Hh, Hh}, {Hh, 0}, {out, Hh}, {out, 0}};
    sg_st_tensor t[7];
    float *data[7];
    int n = 0;
    for (int q = 0; q < 6; q++) {
        int i = order[q];
        size_t count = (size_t)shapes[i][0] * (shapes[i][1] ? (size_t)shapes[i][1] : 1);
        data[n] = sg_xmalloc(count * sizeof(float));
        double bound = 1.0 / sqrt(i < 2 ? L : Hh);
        for (size_t j = 0; j < count; j++) data[n][j] = (float)(bound * (2.0 * uniform() - 1.0));
        if (i == 2 && poison != 0.0f) data[n][5] = poison;
        t[n].name = sg_net_names[i];
        t[n].data = data[n];
        t[n].ndim = shapes[i][1] ? 2 : 1;
        t[n].shape[0] = shapes[i][0], t[n].shape[1] = shapes[i][1];
        if (keep) {
            keep[i] = sg_xmalloc(count * sizeof(float));
            memcpy(keep[i], data[n], count * sizeof(float));
        }
        n++;
    }
    if (extra) {
        data[n] = sg_xmalloc(4 * sizeof(float));
        memset(data[n], 0, 4 * sizeof(float));
        t[n] = (sg_st_tensor){extra, data[n], 1, {4}};
        n++;
    }
    if (sg_st_write(path, t, n, NULL, 0) != 0) {
        fprintf(stderr, "test_eval: %s\n", sg_last_error());
        exit(1);
    }
    for (int i = 0; i < n; i++) free(data[i]);
}

static void refused(sg_engine *e, const char *path, const char *what, const char *needle)
{
    sg_generator *g = sg_generator_load(path, e, 16);
    CHECK(g == NULL, "%s: loaded", what);
    sg_generator_free(g);
    CHECK(strstr(sg_last_error(), path) && strstr(sg_last_error(), needle) &&
              !strchr(sg_last_error(), '\n'),
          "%s: error '%s' should name the file and say '%s' on one line", what, sg_last_error(),
          needle);
}

static void test_generator(sg_engine *e1, sg_engine *e2)
{
    const int L = 10, Hh = 33, order[6] = {5, 2, 0, 4, 1, 3}, plain[6] = {0, 1, 2, 3, 4, 5};
    char path[256];
    float *w[6];
    snprintf(path, sizeof path, "%s/g.safetensors", tmp_dir);
    write_g(path, L, Hh, 784, order, NULL, 0.0f, w);

    const size_t n = 37;   /* more than one chunk of 16 rows */
    sg_generator *g1 = sg_generator_load(path, e1, 16), *g2 = sg_generator_load(path, e2, 16);
    CHECK(g1 && g2, "G with keys in another order: %s", sg_last_error());
    if (g1 && g2) {
        CHECK(sg_generator_latent(g1) == L && sg_generator_hidden(g1) == Hh &&
                  sg_generator_dataset(g1) == NULL,
              "latent %d hidden %d", sg_generator_latent(g1), sg_generator_hidden(g1));
        float *z = sg_xmalloc(n * L * sizeof(float));
        float *x1 = sg_xmalloc(n * 784 * sizeof(float)), *x2 = sg_xmalloc(n * 784 * sizeof(float));
        sg_sample_z(e1->k, z, n, L, 42);
        sg_generator_run(g1, z, n, x1);
        sg_generator_run(g2, z, n, x2);
        CHECK(!memcmp(x1, x2, n * 784 * sizeof(float)), "G differs between 1 and %d threads",
              e2->nth);
        /* naive double forward */
        double *ref = sg_xmalloc(n * 784 * sizeof(double)), h1[64], h2[64];
        for (size_t r = 0; r < n; r++) {
            for (int i = 0; i < Hh; i++) {
                double s = w[1][i];
                for (int j = 0; j < L; j++) s += (double)w[0][i * L + j] * z[r * L + j];
                h1[i] = s > 0 ? s : 0;
            }
            for (int i = 0; i < Hh; i++) {
                double s = w[3][i];
                for (int j = 0; j < Hh; j++) s += (double)w[2][i * Hh + j] * h1[j];
                h2[i] = s > 0 ? s : 0;
            }
            for (int i = 0; i < 784; i++) {
                double s = w[5][i];
                for (int j = 0; j < Hh; j++) s += (double)w[4][i * Hh + j] * h2[j];
                ref[r * 784 + i] = tanh(s);
            }
        }
        check_close("G forward against double", x1, ref, n * 784, 1e-5, 1e-4);
        free(z), free(x1), free(x2), free(ref);
    }
    sg_generator_free(g1);
    sg_generator_free(g2);
    for (int i = 0; i < 6; i++) free(w[i]);

    /* What is not a G. */
    snprintf(path, sizeof path, "%s/d.safetensors", tmp_dir);
    write_g(path, 784, 32, 1, plain, NULL, 0.0f, NULL);
    refused(e1, path, "a D", "4.weight is [1, 32]; expected a G");
    snprintf(path, sizeof path, "%s/extra.safetensors", tmp_dir);
    write_g(path, L, Hh, 784, plain, "6.bias", 0.0f, NULL);
    refused(e1, path, "an extra tensor", "7 tensors; expected a G");
    snprintf(path, sizeof path, "%s/nan.safetensors", tmp_dir);
    write_g(path, L, Hh, 784, plain, NULL, NAN, NULL);
    refused(e1, path, "a NaN weight", "non-finite");
    snprintf(path, sizeof path, "%s/wide.safetensors", tmp_dir);
    write_g(path, L, Hh, 785, plain, NULL, 0.0f, NULL);
    refused(e1, path, "785 outputs", "4.weight is [785, 33]");
    {
        float v[4] = {0};
        sg_st_tensor t = {"0.weight", v, 1, {4}};
        snprintf(path, sizeof path, "%s/one.safetensors", tmp_dir);
        sg_st_write(path, &t, 1, NULL, 0);
        refused(e1, path, "one tensor", "no tensor 0.bias");
    }
    snprintf(path, sizeof path, "%s/missing.safetensors", tmp_dir);
    refused(e1, path, "a missing file", "missing.safetensors");

    /* z: a prefix of a larger draw; not training's z; seeds differ. */
    float z1[3 * 8], z5[5 * 8], zt[8], zs[8];
    sg_sample_z(e1->k, z1, 3, 8, 7);
    sg_sample_z(e1->k, z5, 5, 8, 7);
    CHECK(!memcmp(z1, z5, sizeof z1), "the first rows of a larger draw differ");
    e1->k->normal(zt, 0, 8, 7, SG_STREAM_Z, 0, 0);
    sg_sample_z(e1->k, zs, 1, 8, 8);
    CHECK(memcmp(zt, z1, sizeof zt) && memcmp(zs, z1, sizeof zs),
          "sample z equals training's z or another seed's");
}

/* ---- fixtures for test_eval.py ---------------------------------------------- */

static void write_f32(const char *dir, const char *name, const float *f, size_t count)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(f, sizeof(float), count, fp) != count || fclose(fp) != 0) {
        fprintf(stderr, "test_eval: cannot write %s\n", path);
        exit(1);
    }
}

/* Features x M + c, with M [H, H] Gaussian / sqrt(H): correlated dims. */
static float *mixed_features(size_t n, int H, double shift, int relu)
{
    double *M = sg_xmalloc((size_t)H * H * sizeof(double));
    double *x = sg_xmalloc((size_t)H * sizeof(double));
    for (int i = 0; i < H * H; i++) M[i] = gauss() / sqrt(H);
    float *f = sg_xmalloc(n * (size_t)H * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        for (int j = 0; j < H; j++) x[j] = gauss();
        for (int j = 0; j < H; j++) {
            double s = shift;
            for (int p = 0; p < H; p++) s += x[p] * M[p * H + j];
            /* ReLU features, the last quarter of the dims never active */
            if (relu) s = j >= 3 * H / 4 || s < 0.0 ? 0.0 : s;
            f[r * (size_t)H + j] = (float)s;
        }
    }
    free(M), free(x);
    return f;
}

static void write_fixtures(const char *dir, sg_engine *e)
{
    if (sg_mkdir(dir) != 0) {
        fprintf(stderr, "test_eval: %s\n", sg_last_error());
        exit(1);
    }
    struct { const char *name; size_t na, nb; int H; int relu; double shift; } cases[] = {
        {"gauss", 1500, 1200, 64, 0, 0.4},
        {"relu", 1200, 1000, 48, 1, 0.2},
        {"fewer_than_dims", 40, 50, 64, 0, 0.1},
        {"blocks", 700, 4200, 12, 0, 0.3},
    };
    json_t *all = json_array();
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int H = cases[c].H;
        float *a = mixed_features(cases[c].na, H, 0.0, cases[c].relu);
        float *b = mixed_features(cases[c].nb, H, cases[c].shift, cases[c].relu);
        size_t h = (size_t)H;
        double *mua = sg_xmalloc(h * sizeof(double)), *mub = sg_xmalloc(h * sizeof(double));
        double *Sa = sg_xmalloc(h * h * sizeof(double)), *Sb = sg_xmalloc(h * h * sizeof(double));
        sg_feature_stats(e, a, cases[c].na, H, mua, Sa);
        sg_feature_stats(e, b, cases[c].nb, H, mub, Sb);
        double fcd = NAN;
        CHECK(sg_frechet(mua, Sa, mub, Sb, H, &fcd) == 0, "%s: %s", cases[c].name, sg_last_error());
        float *ra = sg_xmalloc(cases[c].na * sizeof(float));
        float *rb = sg_xmalloc(cases[c].nb * sizeof(float));
        sg_knn_radii(e, a, cases[c].na, H, SG_EVAL_K, ra);
        sg_knn_radii(e, b, cases[c].nb, H, SG_EVAL_K, rb);
        double precision, recall;
        sg_ball_coverage(e, a, cases[c].na, ra, b, cases[c].nb, rb, H, &precision, &recall);
        char fa[64], fb[64];
        snprintf(fa, sizeof fa, "%s_a.f32", cases[c].name);
        snprintf(fb, sizeof fb, "%s_b.f32", cases[c].name);
        write_f32(dir, fa, a, cases[c].na * (size_t)H);
        write_f32(dir, fb, b, cases[c].nb * (size_t)H);
        json_array_append_new(all, json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:f, s:f, s:f, s:i}",
            "name", cases[c].name, "a", fa, "b", fb, "n_a", (json_int_t)cases[c].na,
            "n_b", (json_int_t)cases[c].nb, "H", H, "fcd", fcd, "precision", precision,
            "recall", recall, "k", SG_EVAL_K));
        free(a), free(b), free(mua), free(mub), free(Sa), free(Sb), free(ra), free(rb);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/cases.json", dir);
    CHECK(json_dump_file(all, path, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) == 0,
          "cannot write %s", path);
    json_decref(all);
}

/* ---- the real data ---------------------------------------------------------- */

static void test_data(sg_engine *e)
{
    const char *env = getenv("SIMDGAN_DATA");
    if (!env || !*env) {
        printf("  skipped the MNIST checks: SIMDGAN_DATA is not set\n");
        return;
    }
    sg_evaluator *ev = sg_eval_open("mnist", NULL, e);
    CHECK(ev != NULL, "sg_eval_open: %s", sg_last_error());
    if (!ev) return;
    char dir[4096];
    sg_dataset test = {0};
    CHECK(sg_data_find(dir, sizeof dir, NULL, "mnist") == 0 && sg_mnist_load(&test, dir, 0) == 0,
          "%s", sg_last_error());
    float *x = sg_xmalloc(test.n * 784 * sizeof(float));
    for (size_t i = 0; i < test.n * 784; i++) x[i] = ((float)test.images[i] / 255.0f - 0.5f) / 0.5f;
    sg_eval_result r;
    CHECK(sg_eval_images(ev, x, test.n, &r) == 0, "%s", sg_last_error());
    printf("  extractor %s\n  test vs itself: FCD %.3g, score %.4f, precision %.4f, recall %.4f\n"
           "  floor (train vs test) %.4f; test score %.4f\n",
           r.extractor, r.fcd, r.score, r.precision, r.recall, r.fcd_floor, r.score_test);
    CHECK(strstr(r.extractor, "crc32 ") != NULL, "extractor '%s' names no checksum", r.extractor);
    /* Not exactly 0: an eigenvalue near 0 computed with an absolute error d
     * of a few ulps of the largest has a square root of sqrt(d). */
    CHECK(fabs(r.fcd) <= 1e-4 * r.fcd_floor,
          "test set against itself: FCD %.3g, expected 0 within rounding (floor %.4f)", r.fcd,
          r.fcd_floor);
    CHECK(r.score == r.score_test, "test set's score %.17g, evaluator's %.17g", r.score,
          r.score_test);
    CHECK(r.score_test > 9.5, "test set's classifier score %.4f, expected above 9.5", r.score_test);
    CHECK(r.precision >= 0.999 && r.recall >= 0.999, "test set against itself: precision %.4f, "
          "recall %.4f, expected 1", r.precision, r.recall);
    CHECK(r.covered == 10 && r.kl_uniform < 0.01, "test set: %d classes, KL %.4f", r.covered,
          r.kl_uniform);
    size_t labels[SG_CLASSES] = {0};
    for (size_t i = 0; i < test.n; i++) labels[test.labels[i]]++;
    for (int c = 0; c < SG_CLASSES; c++)
        CHECK(fabs((double)r.hist[c] - (double)labels[c]) <= 0.05 * (double)labels[c],
              "class %d predicted %zu times, %zu labels", c, r.hist[c], labels[c]);
    /* Uniform noise images: far from everything. */
    for (size_t i = 0; i < test.n * 784; i++) x[i] = (float)(2.0 * uniform() - 1.0);
    sg_eval_result noise;
    CHECK(sg_eval_images(ev, x, test.n, &noise) == 0, "%s", sg_last_error());
    printf("  uniform noise: FCD %.4f, score %.4f, precision %.4f, recall %.4f\n", noise.fcd,
           noise.score, noise.precision, noise.recall);
    CHECK(r.fcd_floor > 0.0 && r.fcd_floor < 0.02 * noise.fcd,
          "floor %.4f: expected positive and small against noise's %.4f", r.fcd_floor, noise.fcd);
    CHECK(noise.score < 0.5 * r.score_test && noise.recall < 0.05,
          "noise: score %.4f, recall %.4f", noise.score, noise.recall);
    free(x);
    sg_dataset_free(&test);
    sg_eval_close(ev);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_eval OUT_DIR [--data]\n");
        return 2;
    }
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    sg_engine e1 = engine(1), e2 = engine(2);
    test_frechet();
    test_stats(&e1, &e2);
    test_class_stats();
    test_knn(&e1, &e2);
    test_generator(&e1, &e2);
    write_fixtures(argv[1], &e2);
    if (argc > 2 && !strcmp(argv[2], "--data")) test_data(&e2);
    sg_engine_free(&e1);
    sg_engine_free(&e2);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "test_eval: could not remove %s\n", tmp_dir);
    return check_finish("test_eval");
}
