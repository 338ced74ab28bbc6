import { defineSuite } from '../suite.js';

defineSuite('kit', 'money-transfer-saga');
