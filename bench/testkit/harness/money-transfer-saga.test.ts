import { defineSuite } from '../suite.js';

defineSuite('harness', 'money-transfer-saga');
