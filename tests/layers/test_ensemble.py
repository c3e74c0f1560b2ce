import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.ensemble import (EnsembleLogits, MemberLogits, MembersAccuracy, MembersCrossEntropy, layers_of_member,
                             member_layers, member_metric, member_name, split_name)

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(5, 3, 4)).astype(np.float32) * 3  # (batch, members, classes)
LABELS = np.array([0, 3, 1, 1, 2])


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_the_ensemble_logits_are_the_log_of_the_members_mean_probability():
    out = EnsembleLogits()(LOGITS).numpy()
    np.testing.assert_allclose(out, np.log(_softmax(LOGITS).mean(axis=1)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_softmax(out), _softmax(LOGITS).mean(axis=1), rtol=1e-5, atol=1e-6)
    extreme = np.array([[[80.0, -80.0], [-80.0, 80.0]]], np.float32)  # no overflow: log-sum-exp
    np.testing.assert_allclose(_softmax(EnsembleLogits()(extreme).numpy()), [[0.5, 0.5]], atol=1e-6)


def test_the_loss_is_the_mean_of_each_members_cross_entropy():
    nll = -np.log(_softmax(LOGITS)[np.arange(5), :, LABELS])  # (batch, members)
    for labels in (LABELS, LABELS[:, None]):  # (batch,) and (batch, 1), as Keras passes them
        loss = MembersCrossEntropy()(labels, LOGITS)
        np.testing.assert_allclose(float(loss), nll.mean(), rtol=1e-5)


def test_each_member_gets_the_gradient_of_its_own_loss_only():
    """d loss / d z_k = (softmax(z_k) - onehot(y)) / (members * batch): what member k alone would
    get (divided by the number of members), whatever the other members predict."""
    logits = tf.Variable(LOGITS)
    with tf.GradientTape() as tape:
        loss = MembersCrossEntropy()(LABELS, logits)
    gradient = tape.gradient(loss, logits).numpy()
    expected = (_softmax(LOGITS) - np.eye(4)[LABELS][:, None, :]) / (3 * 5)
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-7)


def test_the_accuracy_is_the_ensembles():
    mean = _softmax(LOGITS).mean(axis=1)
    metric = MembersAccuracy()
    metric.update_state(LABELS, LOGITS)
    assert metric.name == "accuracy"
    assert float(metric.result()) == pytest.approx(np.mean(mean.argmax(-1) == LABELS))
    # a case where the majority of members and the mean probability disagree: the mean decides
    votes = np.log(np.array([[[0.51, 0.49], [0.51, 0.49], [0.0001, 0.9999]]], np.float32))
    metric.reset_state()
    metric.update_state(np.array([1]), votes)
    assert float(metric.result()) == 1.0
    for k in range(3):  # one member's own accuracy
        member = MembersAccuracy(f"member{k}_accuracy", member=k)
        member.update_state(LABELS, LOGITS)
        assert float(member.result()) == pytest.approx(np.mean(LOGITS[:, k].argmax(-1) == LABELS))


def test_member_names():
    assert [member_name("embedding", k) for k in range(3)] == ["embedding", "embedding_member1", "embedding_member2"]
    assert split_name("embedding_member12") == ("embedding", 12) and split_name("char_cnn") == ("char_cnn", 0)
    assert split_name("lstm_0") == ("lstm_0", 0) and member_metric(2) == "member2_accuracy"
    ids = keras.Input((None,), dtype="int32")
    logits = [keras.layers.Dense(2, name=member_name("logits", k))(
        keras.layers.Embedding(10, 4, name=member_name("embedding", k))(ids)[:, 0]) for k in range(3)]
    model = keras.Model(ids, EnsembleLogits()(MemberLogits()(logits)))
    assert [layer.name for layer in member_layers(model, "embedding")] == [member_name("embedding", k)
                                                                            for k in range(3)]
    assert member_layers(model, "logits_member1") == []  # a member's own name is not a base name
    assert [layer.name for layer in layers_of_member(model, 1)] == ["embedding_member1", "logits_member1"]


def test_an_ensemble_and_its_compiled_trainer_survive_a_keras_round_trip(tmp_path):
    ids = keras.Input((None,), dtype="int32")
    logits = [keras.layers.Dense(2, name=member_name("logits", k))(
        keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(ids))) for k in range(2)]
    stacked = MemberLogits(name="member_logits")(logits)
    model, trainer = keras.Model(ids, EnsembleLogits()(stacked)), keras.Model(ids, stacked)
    trainer.compile("adam", loss=MembersCrossEntropy(), metrics=[MembersAccuracy(), MembersAccuracy("m1", member=1)])
    x, y = RNG.integers(0, 10, (16, 5)), RNG.integers(0, 2, 16)
    trainer.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    trainer.save(tmp_path / "trainer.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "model.keras")(x), model(x), atol=1e-6)
    loaded = keras.saving.load_model(tmp_path / "trainer.keras")  # compiled: loss and metric registered
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx(
        trainer.evaluate(x, y, verbose=0, return_dict=True))
