/*
 * curve.c — a fixed-rate bond priced on a zero curve given by its nodes: the
 * adjoint twin returns the price and its sensitivity to every node rate (the
 * bucketed rate risk) in one sweep.
 *
 *   z(s)  = zero rate at time s, continuously compounded: linear in s between
 *           the nodes (t[j], zr[j]), flat before the first and after the last
 *   price = sum_k c_k exp(-z(cf_t[k]) cf_t[k]),
 *   c_k   = face * coupon * (cf_t[k] - cf_t[k-1])   (the first from 0),
 *           plus face at the last cash flow.
 *
 * coupon is the annual rate; cash-flow times are in years from today, in
 * increasing order, and the first coupon accrues from today (a bond issued
 * today; a seasoned bond's first coupon would accrue from its last payment).
 * The node times t and the cash-flow times are data (`passive`); the node
 * rates zr, the coupon and the face are active.  Every cash flow searches
 * its bracket; the search is bounded, so it stays inside the arrays even for
 * an unsorted grid.
 *
 * A curve shared by a book of bonds is passed once (lane stride 0 for t and
 * zr); the adjoint then sums every bond's node risk into one zr_b array.
 * m and ncf may differ per lane.  Assumes m >= 1, t strictly increasing.
 * MIT licence — see LICENSE.
 */
#include <math.h>

#include "twinc.h"

#pragma aad passive(t, cf_t)
double bond_price(double coupon, double face, int m, const double t[m], const double zr[m],
                  int ncf, const double cf_t[ncf])
{
    double price = 0.0;
    double prev = 0.0;
    for (int k = 0; k < ncf; k++) {
        double s = cf_t[k];
        double z;
        if (s <= t[0]) {
            z = zr[0];
        } else if (s >= t[m - 1]) {
            z = zr[m - 1];
        } else {
            int j = 0;
            while (j < m - 2 && t[j + 1] < s)
                j++;
            double w = (s - t[j]) / (t[j + 1] - t[j]);
            z = (1.0 - w) * zr[j] + w * zr[j + 1];
        }
        double cf = face * coupon * (s - prev);
        if (k == ncf - 1)
            cf += face;
        price += cf * exp(-z * s);
        prev = s;
    }
    return price;
}
