/* eval.h: how good are generated images, measured in the evaluation
 * classifier's penultimate features (classifier.h) against the test set.
 *
 * - Fréchet classifier distance (FCD), the FID recipe with simdgan's own
 *   classifier as the extractor: |mu1 - mu2|^2 + Tr S1 + Tr S2
 *   - 2 Tr sqrt(S1^1/2 S2 S1^1/2), in double, covariances with 1/(n - 1),
 *   S1^1/2 and the eigenvalues of S1^1/2 S2 S1^1/2 from LAPACK's dsyevd,
 *   eigenvalues clamped at 0 before square roots. Beside it the floor: the
 *   same distance between the training and the test set.
 * - Classifier score exp(E_x KL(p(y|x) || p(y))) (the Inception Score
 *   recipe; 1 to 10), the histogram of predicted classes, the classes
 *   covered (predicted for at least one image) and the histogram's KL to
 *   uniform (mode collapse).
 * - Precision and recall of the generated manifold (Kynkäänniemi et al.
 *   2019): k-NN balls (k = 3, the k-th nearest other sample) around each
 *   sample of one set; precision is the fraction of generated samples inside
 *   some test-set ball, recall the fraction of test samples inside some
 *   generated ball. Squared distances come from the SGEMM, blockwise.
 *
 * Figures from different extractors are not comparable: every result
 * carries the classifier's id (name and CRC-32). */
#ifndef SIMDGAN_EVAL_H
#define SIMDGAN_EVAL_H

#include <stddef.h>

#include "classifier.h"
#include "gemm.h"

#define SG_EVAL_K 3   /* neighbours that make a k-NN ball */

typedef struct sg_eval_result {
    double fcd;        /* generated vs test                                  */
    double fcd_floor;  /* train vs test: the scale of "indistinguishable"    */
    double score;      /* classifier score of the generated images, 1..10    */
    double score_test; /* the test set's own score                           */
    double kl_uniform; /* KL(predicted class histogram || uniform), nats     */
    double precision, recall; /* NaN when fewer than SG_EVAL_K + 1 images    */
    int covered;       /* classes predicted for at least one image            */
    size_t hist[SG_CLASSES]; /* images predicted as each class                */
    size_t n;          /* generated images                                   */
    size_t n_train, n_test;
    char extractor[128]; /* sg_classifier_id                                 */
} sg_eval_result;

typedef struct sg_evaluator sg_evaluator;

/* 0 when this build evaluates; -1 with a one-line error when it was built
 * without LAPACKE, whose dsyevd the Frechet distance needs (the Windows
 * build: Debian has no LAPACKE for MinGW). */
int sg_eval_available(void);

/* Loads the shipped classifier of dataset ("mnist" or "fashion-mnist"), the
 * training and test sets (data_dir as --data, or NULL to search), and
 * computes once: the test set's features, mean and covariance, its k-NN
 * radii, its score, and the train-vs-test floor. Runs on e (its threads,
 * its own parallel regions: call from outside a parallel region). NULL
 * with a one-line error. */
sg_evaluator *sg_eval_open(const char *dataset, const char *data_dir, sg_engine *e);
/* The same with the classifier file classifier_path (NULL: the shipped). */
sg_evaluator *sg_eval_open_with(const char *classifier_path, const char *dataset,
                                const char *data_dir, sg_engine *e);
/* Every figure for n >= 2 images x [n, 784] in [-1, 1]. 0, or -1 with an
 * error (n < 2, a failed eigendecomposition). */
int sg_eval_images(sg_evaluator *ev, const float *x, size_t n, sg_eval_result *r);
/* The real data's figures alone: fcd_floor, score_test, n_train, n_test,
 * extractor; n 0 and the generated figures NaN. */
void sg_eval_real(const sg_evaluator *ev, sg_eval_result *r);
void sg_eval_close(sg_evaluator *ev);

/* The pieces, exposed for the tests. */

/* mu [H] and S [H, H] (full, symmetric, 1/(n - 1)) of feat [n, H], n >= 2,
 * in double; the sums run in a fixed order whatever e->nth is. */
void sg_feature_stats(sg_engine *e, const float *feat, size_t n, int H, double *mu, double *S);
/* The Fréchet distance between N(mu1, S1) and N(mu2, S2), H dims, into
 * *out. 0, or -1 with an error when dsyevd fails. */
int sg_frechet(const double *mu1, const double *S1, const double *mu2, const double *S2, int H,
               double *out);
/* Classifier score of prob [n, 10]; hist [10] and covered from each row's
 * argmax (the first on ties); kl_uniform of the histogram. */
void sg_class_stats(const float *prob, size_t n, double *score, size_t hist[SG_CLASSES],
                    int *covered, double *kl_uniform);
/* radii [n]: squared distance from each row of feat [n, H] to its k-th
 * nearest other row (n > k). */
void sg_knn_radii(sg_engine *e, const float *feat, size_t n, int H, int k, float *radii);
/* Balls both ways from one pass over the distances: *a_in_b, the fraction
 * of rows of a [na, H] inside some ball of b (|a_i - b_j|^2 <= rb[j]);
 * *b_in_a, the fraction of rows of b [nb, H] inside some ball of a
 * (radii ra [na]). With a generated and b the test set: precision, recall. */
void sg_ball_coverage(sg_engine *e, const float *a, size_t na, const float *ra, const float *b,
                      size_t nb, const float *rb, int H, double *a_in_b, double *b_in_a);

#endif
