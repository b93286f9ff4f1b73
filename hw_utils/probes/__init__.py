"""Probes: observations of the student's objects, made where the student's code runs.

A test that needs an object (a layer, a model, an optimizer, a training loop) cannot receive it:
only data crosses the grading boundary (:mod:`hw_utils.boundary`). It calls a probe instead::

    report = student.run(probes.hw1.conv_layer, student.MyConv2d, (3, 4, 3), {}, x)

``student.run`` calls the probe in the student's kernel (during grading) or in the student's own
kernel (in JupyterLab), with ``student.<name>`` arguments resolved to the student's objects; the
probe builds and exercises them and returns data that the test then judges.

Rules for probes:

- return raw observations (tensors computed on the test's inputs, parameters after some steps),
  never a verdict the student could guess (``"frozen": True``): the checker decides;
- take only data and student references as arguments, build everything else from them (seeded);
- one module per assignment (``hw_utils.probes.hw1``...), shared helpers in
  :mod:`hw_utils.probes.common`; a stand-in that replaces a graded function (``standing_in``) is a
  course reference and is marked with :func:`hw_utils.references.course_reference`;
- a probe that runs the student's code sets ``__tracebackhide__ = True``: IPython leaves its frame
  out, so a student's traceback goes from the test cell straight into their own code.
"""
