"""Domains: the 61 top-level classes of the Mathematics Subject Classification (MSC 2020) that s1
classifies questions into (every class except 00 General and 01 History), the rubric an LLM
classifier is shown, and the strict reading of its reply.

A reply must end with a line holding exactly one two-digit code of this list (optionally in bold
or backticks); anything else is no classification, recorded with the reply's last line, never a
guess.
"""

from __future__ import annotations

import re

MSC: dict[str, tuple[str, str]] = {
    "03": ("Mathematical logic and foundations", "model theory, computability, set theory, proof theory"),
    "05": ("Combinatorics", "enumeration, graph theory, designs, extremal and algebraic combinatorics"),
    "06": ("Order, lattices, ordered algebraic structures", "ordered sets, lattices, Boolean algebras"),
    "08": ("General algebraic systems", "algebraic structures, varieties"),
    "11": ("Number theory", "divisibility, primes, Diophantine equations, congruences, analytic number theory"),
    "12": ("Field theory and polynomials", "field extensions, roots of polynomials, real and complex fields"),
    "13": ("Commutative algebra", "commutative rings, ideals, modules"),
    "14": ("Algebraic geometry", "varieties, curves, schemes"),
    "15": ("Linear and multilinear algebra; matrix theory", "vector spaces, matrices, determinants, eigenvalues"),
    "16": ("Associative rings and algebras", "rings, modules, representation theory of algebras"),
    "17": ("Nonassociative rings and algebras", "Lie algebras, Jordan algebras"),
    "18": ("Category theory; homological algebra", "categories, functors, homological algebra"),
    "19": ("K-theory", "algebraic and topological K-theory"),
    "20": ("Group theory and generalizations", "finite and infinite groups, permutation groups, semigroups"),
    "22": ("Topological groups, Lie groups", "locally compact groups, Lie groups"),
    "26": ("Real functions", "functions of real variables, inequalities, derivatives and integrals of one variable"),
    "28": ("Measure and integration", "measures, integrals, ergodic measure theory"),
    "30": ("Functions of a complex variable", "analytic functions, series, conformal maps"),
    "31": ("Potential theory", "harmonic and subharmonic functions"),
    "32": ("Several complex variables and analytic spaces", "holomorphic functions of several variables"),
    "33": ("Special functions", "gamma, hypergeometric, orthogonal polynomials, Bessel functions"),
    "34": ("Ordinary differential equations", "ODEs, initial and boundary value problems, stability"),
    "35": ("Partial differential equations", "PDEs, heat, wave and Laplace equations"),
    "37": ("Dynamical systems and ergodic theory", "iteration, chaos, flows"),
    "39": ("Difference and functional equations", "recurrences, functional equations"),
    "40": ("Sequences, series, summability", "convergence, limits of sequences and series"),
    "41": ("Approximations and expansions", "approximation by polynomials, interpolation"),
    "42": ("Harmonic analysis on Euclidean spaces", "Fourier series and transforms, wavelets"),
    "43": ("Abstract harmonic analysis", "harmonic analysis on groups"),
    "44": ("Integral transforms, operational calculus", "Laplace and other integral transforms"),
    "45": ("Integral equations", "Fredholm and Volterra equations"),
    "46": ("Functional analysis", "normed and Hilbert spaces, distributions"),
    "47": ("Operator theory", "linear operators, spectral theory"),
    "49": ("Calculus of variations and optimal control; optimization", "variational problems, optimal control"),
    "51": ("Geometry", "Euclidean plane and solid geometry, triangles, circles, constructions"),
    "52": ("Convex and discrete geometry", "polytopes, packings, lattice points, discrete geometry"),
    "53": ("Differential geometry", "curves and surfaces, Riemannian geometry"),
    "54": ("General topology", "topological spaces, continuity, compactness"),
    "55": ("Algebraic topology", "homotopy, homology"),
    "57": ("Manifolds and cell complexes", "low-dimensional topology, knots"),
    "58": ("Global analysis, analysis on manifolds", "differential topology, calculus on manifolds"),
    "60": ("Probability theory and stochastic processes", "probability, random variables, Markov chains"),
    "62": ("Statistics", "estimation, hypothesis testing, regression"),
    "65": ("Numerical analysis", "numerical methods, error analysis"),
    "68": ("Computer science", "algorithms, data structures, complexity, programming"),
    "70": ("Mechanics of particles and systems", "kinematics, dynamics, Lagrangian and Hamiltonian mechanics"),
    "74": ("Mechanics of deformable solids", "elasticity, plasticity, fracture"),
    "76": ("Fluid mechanics", "flows, viscosity, turbulence"),
    "78": ("Optics, electromagnetic theory", "optics, electromagnetism, circuits of fields"),
    "80": ("Classical thermodynamics, heat transfer", "thermodynamics, heat conduction"),
    "81": ("Quantum theory", "quantum mechanics, quantum field theory"),
    "82": ("Statistical mechanics, structure of matter", "statistical physics, condensed matter"),
    "83": ("Relativity and gravitational theory", "special and general relativity, cosmology"),
    "85": ("Astronomy and astrophysics", "stars, planets, celestial observation"),
    "86": ("Geophysics", "the solid earth, oceans and atmosphere"),
    "90": ("Operations research, mathematical programming", "linear and integer programming, scheduling"),
    "91": ("Game theory, economics, finance, and other social and behavioral sciences",
           "games, economics, finance, social science"),
    "92": ("Biology and other natural sciences", "biology, medicine, chemistry, genetics"),
    "93": ("Systems theory; control", "control systems, stability, observability"),
    "94": ("Information and communication theory, circuits", "information, coding theory, circuits"),
    "97": ("Mathematics education", "school mathematics, arithmetic, elementary problems"),
}

SYSTEM_PROMPT = (
    "You sort questions into subjects using the classification rubric provided. You get a question and a "
    "list of subjects, each with a two-digit code. Choose the one subject the question belongs to; when it "
    "touches several, choose the most relevant. Explain your reasoning briefly, then end your reply with a "
    "new line that holds only the two-digit code of the subject."
)

_CODE_LINE = re.compile(r"^[\s*`_]*(\d{2})[\s*`_.]*$")


def rubric() -> str:
    """The subject list shown to the classifier: title, code and what it covers, per class."""
    return "\n\n".join(f"### {title}\n* Code: {code}\n* Description: {about}" for code, (title, about) in MSC.items())


def classify_prompt(question: str) -> str:
    """The user message of one classification."""
    return f"## Question\n{question}\n\n## Classification rubric\n{rubric()}"


def parse_code(reply: str) -> tuple[str | None, str | None]:
    """(code, None) when the reply's last non-empty line is exactly one known code; else (None, why)."""
    lines = [ln for ln in (reply or "").splitlines() if ln.strip()]
    if not lines:
        return None, "empty reply"
    last = lines[-1]
    m = _CODE_LINE.match(last)
    if m is None:
        return None, f"last line is not a two-digit code: {last.strip()[:60]!r}"
    code = m.group(1)
    if code not in MSC:
        return None, f"code {code} is not one of the {len(MSC)} MSC classes"
    return code, None


def domain_name(code: str | None) -> str | None:
    return MSC[code][0] if code in MSC else None
