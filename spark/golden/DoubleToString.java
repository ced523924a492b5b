// Prints java.lang.Double.toString for doubles, to compare cordstream's console
// formatting of DOUBLE columns with the JVM's (Spark prints a double with
// Double.toString). Run with the JVM Spark runs on:
//
//   java spark/golden/DoubleToString.java golden      > doubles-jdkNN.txt
//       about 26,000 doubles: special values, every power of two and of ten and
//       their neighbours, subnormals, the 1e-3 and 1e7 layout boundaries,
//       pseudo-random bit patterns and values, averages s/b of integers;
//       lines "<IEEE bits in hex> <Double.toString>"
//   java spark/golden/DoubleToString.java averages B F
//       Double.toString((double) s / (double) b) for b = 1..B, s = 0..F*b, one a
//       line: run it on two JVMs and diff the outputs to see where they differ.
//
// The pseudo-random values come from SplitMix64 with fixed seeds, so every JVM
// prints the same doubles in the same order.
public class DoubleToString {
	static long state;

	static long next() {
		state += 0x9E3779B97F4A7C15L;
		long z = state;
		z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
		z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
		return z ^ (z >>> 31);
	}

	static final StringBuilder out = new StringBuilder(1 << 20);

	static void emit(double d) {
		out.append(String.format("%016x", Double.doubleToRawLongBits(d))).append(' ')
				.append(Double.toString(d)).append('\n');
		if (out.length() > (1 << 19)) {
			flush();
		}
	}

	static void flush() {
		System.out.print(out);
		out.setLength(0);
	}

	static void emitAround(double d) {
		emit(Math.nextDown(d));
		emit(d);
		emit(Math.nextUp(d));
	}

	public static void main(String[] args) {
		if (args.length >= 1 && args[0].equals("golden")) {
			golden();
		} else if (args.length == 3 && args[0].equals("averages")) {
			averages(Integer.parseInt(args[1]), Integer.parseInt(args[2]));
		} else {
			System.err.println("usage: DoubleToString golden | averages B F");
			System.exit(2);
		}
		flush();
		System.out.flush();
	}

	static void golden() {
		double[] specials = {0.0, -0.0, Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY,
				Double.MIN_VALUE, Double.MAX_VALUE, Double.MIN_NORMAL, -Double.MIN_VALUE, -Double.MAX_VALUE,
				1.0, -1.0, 0.1, 0.2, 0.3, 0.1 + 0.2, 1.0 / 3, 2.0 / 3, 100.0, 1e-3, 1e7, 9999999.999999998,
				0.001, 0.0009999999999999998, 1e23, 2e23, 8.41e21, 5e-324, 2.0E-3, 1.0E-5, 4.0301848979298272E17,
				3333333.3333333335, 0.0033333333333333335, 3.3333333333333335E9, 1.0E10};
		for (double d : specials) {
			emit(d);
		}
		for (int e = -1074; e <= 1023; e++) { // every power of two, and its neighbours
			emitAround(Math.scalb(1.0, e));
		}
		for (int e = -323; e <= 308; e++) { // every power of ten, and its neighbours
			emitAround(Double.parseDouble("1e" + e));
		}
		for (int i = 1; i <= 1000; i++) { // the smallest subnormals, and integers
			emit(i * Double.MIN_VALUE);
			emit((double) i);
			emit(-i / 7.0);
		}
		state = 1;
		for (int i = 0; i < 4000; i++) { // subnormals
			emit(Double.longBitsToDouble(next() & 0x000fffffffffffffL));
		}
		state = 2;
		for (int i = 0; i < 8000; i++) { // any finite double
			double d = Double.longBitsToDouble(next());
			if (!Double.isNaN(d) && !Double.isInfinite(d)) {
				emit(d);
			}
		}
		state = 3;
		for (int i = 0; i < 4000; i++) { // values of ordinary size, both layouts
			double d = (next() >>> 11) * 0x1.0p-53 * Math.pow(10, (int) ((next() >>> 33) % 16) - 5);
			emit(d);
		}
		state = 4;
		for (int i = 0; i < 6000; i++) { // averages of message lengths
			long b = 1 + (next() >>> 1) % 5000;
			long s = (next() >>> 1) % (b * 4000 + 1);
			emit((double) s / (double) b);
		}
	}

	static void averages(int maxB, int factor) {
		StringBuilder sb = new StringBuilder(1 << 20);
		java.io.PrintStream o = new java.io.PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false);
		for (long b = 1; b <= maxB; b++) {
			for (long s = 0; s <= factor * b; s++) {
				sb.append(Double.toString((double) s / (double) b)).append('\n');
				if (sb.length() > (1 << 19)) {
					o.print(sb);
					sb.setLength(0);
				}
			}
		}
		o.print(sb);
		o.flush();
	}
}
